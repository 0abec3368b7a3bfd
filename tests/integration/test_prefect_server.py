"""The deployments on a real Prefect server on loopback: `mmtc serve` registers them with the
cron from params.yaml, and a triggered nightly run takes in a waiting submission and
publishes a new snapshot whose diff shows it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import tool_env

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(1)
    tail = log.read_text()[-4000:] if log and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def start(cmd: list[str], cwd: Path, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = tool_env() | {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
    }
    log = home / "server.log"
    proc = start(["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)], home, env, log)

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    wait_until(healthy, 180, "the Prefect server", proc, log)
    yield env
    stop(proc)


def deployment(env: dict, name: str) -> dict | None:
    """The deployment as the server's REST API reports it (in-process Prefect clients keep the
    settings they were first imported with, so the API is read over HTTP)."""
    try:
        with urllib.request.urlopen(f"{env['PREFECT_API_URL']}/deployments/name/{name}", timeout=5) as r:
            return json.loads(r.read())
    except OSError:  # 404 until registered, or the server is still starting
        return None


def test_nightly_deployment_takes_in_a_submission(server, built_repo, tmp_path):
    # the demo built once by `dvc repro` (shared with the other modules); the flow, run through
    # the server, finds every stage up to date (building it again here cost two minutes of CI)
    demo_repo, _ = built_repo
    env = server
    built = subprocess.run(["mmtc", "run"], cwd=demo_repo, env=env, capture_output=True, text=True)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    snapshots = sorted((demo_repo / "leaderboard/snapshots").glob("*.parquet"))
    assert snapshots, "the first run wrote no snapshot"

    serve_log = tmp_path / "serve.log"
    serving = start(["mmtc", "serve"], demo_repo, env, serve_log)
    try:
        nightly = wait_until(
            lambda: deployment(env, "nightly-reevaluation/nightly"), 120, "the nightly deployment", serving, serve_log
        )
        assert wait_until(
            lambda: deployment(env, "challenge-pipeline/on-demand"), 30, "the on-demand deployment", serving, serve_log
        )
        params = yaml.safe_load((demo_repo / "params.yaml").read_text())
        schedule = nightly["schedules"][0]["schedule"]
        assert (schedule["cron"], schedule["timezone"]) == (params["nightly"]["cron"], params["nightly"]["timezone"])

        # a new team's upload waits in the inbox
        source = max((demo_repo / "submissions" / "one-rule").iterdir())
        upload = demo_repo / params["nightly"]["inbox"] / "late-team" / "first-try"
        upload.mkdir(parents=True)
        for f in source.glob("*.csv"):
            shutil.copy(f, upload / f.name)

        triggered = subprocess.run(
            ["prefect", "deployment", "run", "nightly-reevaluation/nightly", "--watch", "--watch-timeout", "900"],
            cwd=demo_repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=960,
        )
        assert triggered.returncode == 0, (
            triggered.stdout[-3000:] + triggered.stderr[-3000:] + serve_log.read_text()[-3000:]
        )
        assert "Completed" in triggered.stdout
    finally:
        stop(serving)

    after = sorted((demo_repo / "leaderboard/snapshots").glob("*.parquet"))
    assert len(after) == len(snapshots) + 1
    assert not any(upload.parent.iterdir())  # taken in
    assert any((demo_repo / "submissions" / "late-team").iterdir())
    changes = (demo_repo / "leaderboard/latest.md").read_text()
    assert "late-team" in changes.split("## Changes", 1)[1] if "## Changes" in changes else "late-team" in changes
    summary = json.loads((demo_repo / "results/evaluation.json").read_text())
    assert summary["submissions"] > 0
