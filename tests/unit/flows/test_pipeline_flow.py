"""The challenge_pipeline flow on a toy DVC project, under prefect_test_harness:
DVC decides what is stale, failures name the stage and its log, reruns resume, the
independent tasks of a foreach stage run at once, and transient failures are retried."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

STAGE_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, pathlib
    name, out = sys.argv[1], pathlib.Path(sys.argv[2])
    root = pathlib.Path(".")
    flaky = root / f"flaky-{name}"
    if flaky.exists():
        flaky.unlink()
        print(f"ERROR: '{root.resolve()}' is busy, it is being blocked by: (PID 1)")
        sys.exit(1)
    if (root / f"fail-{name}").exists():
        print(f"something is wrong in {name}: the contribution is broken")
        sys.exit(3)
    start = time.time()
    time.sleep(float((root / "sleep").read_text()) if (root / "sleep").exists() else 0)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"name": name, "start": start, "end": time.time()}))
    print(f"made {out}")
    """
)


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def toy(tmp_path) -> Path:
    repo = tmp_path / "toy"
    repo.mkdir()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["challenge"]["tasks"] = ["a", "b", "c"]
    params["orchestration"] = {"concurrency": 2, "retries": 1, "retry_delay_seconds": 0, "remote": None}
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    (repo / "stage.py").write_text(STAGE_SCRIPT)
    py = sys.executable
    dvc_yaml = {
        "stages": {
            "prepare": {
                "foreach": "${challenge.tasks}",
                "do": {
                    "cmd": f"{py} stage.py prepare-${{item}} work/prep/${{item}}.json",
                    "deps": ["stage.py"],
                    "outs": ["work/prep/${item}.json"],
                },
            },
            "fit": {
                "foreach": "${challenge.tasks}",
                "do": {
                    "cmd": f"{py} stage.py fit-${{item}} work/fit/${{item}}.json",
                    "deps": ["work/prep/${item}.json"],
                    "outs": ["work/fit/${item}.json"],
                },
            },
            "gather": {
                "cmd": f"{py} stage.py gather work/board.json",
                "deps": ["work/fit"],
                "outs": ["work/board.json"],
            },
        }
    }
    (repo / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml))
    git(repo, "init", "-q")
    subprocess.run([str(Path(py).parent / "dvc"), "init", "-q"], cwd=repo, check=True)
    git(repo, "add", "-A")
    git(repo, "-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "-qm", "toy")
    return repo


def run_flow(repo: Path):
    from flows.pipeline import challenge_pipeline

    return challenge_pipeline(repo=str(repo), return_state=True)


def test_runs_everything_then_nothing(harness, toy):
    state = run_flow(toy)
    assert state.is_completed(), state.message
    summary = state.result()
    assert set(summary["ran"]) == {f"{s}@{t}" for s in ("prepare", "fit") for t in "abc"} | {"gather"}
    again = run_flow(toy).result()
    assert again["ran"] == [] and len(again["up_to_date"]) == 7


def test_an_unchanged_always_changed_check_sends_nothing_downstream_through_dvc(harness, toy):
    """resolve_weights-like stages run every time; when their output is unchanged, the stages
    below them are not even started, and when it changes, they rerun."""
    py = sys.executable
    dvc_yaml = yaml.safe_load((toy / "dvc.yaml").read_text())
    write = "import pathlib; pathlib.Path('work').mkdir(exist_ok=True); pathlib.Path('work/check.txt').write_text(pathlib.Path('check-value').read_text())"
    dvc_yaml["stages"] = {
        "check": {
            "cmd": f'{py} -c "{write}"',
            "always_changed": True,
            "deps": ["check-value"],
            "outs": ["work/check.txt"],
        },
        **dvc_yaml["stages"],
    }
    dvc_yaml["stages"]["prepare"]["do"]["deps"].append("work/check.txt")
    (toy / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml, sort_keys=False))
    (toy / "check-value").write_text("one")
    first = run_flow(toy).result()
    assert "check" in first["ran"] and "gather" in first["ran"]
    again = run_flow(toy).result()
    assert again["started"] == ["check"] and again["ran"] == ["check"] and len(again["up_to_date"]) == 7
    (toy / "check-value").write_text("two")
    changed = run_flow(toy).result()
    assert set(changed["ran"]) == {"check", "gather"} | {f"{s}@{t}" for s in ("prepare", "fit") for t in "abc"}


def test_a_failed_task_stops_its_own_chain_and_names_itself(harness, toy):
    (toy / "fail-fit-b").write_text("")
    state = run_flow(toy)
    assert state.is_failed()
    assert "fit@b" in state.message and "the contribution is broken" in state.message
    assert (toy / "work/fit/a.json").is_file() and (toy / "work/fit/c.json").is_file()
    assert (toy / "work/board.json").is_file()  # gathering stages still run over the tasks that made it
    (toy / "fail-fit-b").unlink()
    resumed = run_flow(toy)
    assert resumed.is_completed()
    assert set(resumed.result()["ran"]) == {"fit@b", "gather"}  # DVC skips what is done


def test_upstream_failure_blocks_downstream_of_the_same_task(harness, toy):
    (toy / "fail-prepare-c").write_text("")
    state = run_flow(toy)
    assert state.is_failed() and "prepare@c" in state.message and "blocked: fit@c" in state.message
    assert not (toy / "work/fit/c.json").exists()


def test_transient_failures_are_retried(harness, toy):
    (toy / "flaky-prepare-a").write_text("")
    state = run_flow(toy)
    assert state.is_completed(), state.message
    assert not (toy / "flaky-prepare-a").exists()


def test_independent_tasks_run_at_once(harness, toy):
    (toy / "sleep").write_text("2")
    assert run_flow(toy).is_completed()
    spans = [json.loads((toy / f"work/prep/{t}.json").read_text()) for t in "abc"]
    spans.sort(key=lambda s: s["start"])
    overlaps = sum(1 for x, y in zip(spans, spans[1:]) if y["start"] < x["end"])
    assert overlaps >= 1


def test_targets_limit_the_run(harness, toy):
    summary = run_flow_targets(toy, ["fit@a"])
    assert set(summary["ran"]) == {"prepare@a", "fit@a"}


def run_flow_targets(repo: Path, targets: list[str]) -> dict:
    from flows.pipeline import challenge_pipeline

    return challenge_pipeline(repo=str(repo), targets=targets)


def test_leaderboard_markdown_becomes_an_artifact(harness, toy):
    from prefect.client.orchestration import get_client

    board = toy / "leaderboard"
    board.mkdir()
    (board / "latest.md").write_text("# Leaderboard\n\n| team | score |\n")
    assert run_flow(toy).is_completed()

    async def latest():
        async with get_client() as client:
            from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["leaderboard"]))
            )
            return found[-1].data if found else None

    import asyncio

    assert "| team | score |" in asyncio.run(latest())
