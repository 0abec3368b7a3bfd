"""The background re-evaluation: `mmtc` found beside this interpreter, its log and exit kept,
a run left behind by a stopped portal shown as interrupted (and not blocking the next)."""

from __future__ import annotations

import json

from tasks.portal.reevaluate import STATUS_FILE, Reevaluator


def test_the_command_runs_from_this_environment_and_its_outcome_is_kept(tmp_path):
    r = Reevaluator(tmp_path / "data", tmp_path, ["mmtc", "--help"], "x/y", None)
    started = r.start("org")
    assert started["state"] == "running" and started["by"] == "org"
    r.wait(120)
    status = r.status()
    assert status["state"] == "succeeded" and status["exit_code"] == 0
    assert "--params PARAMS" in status["log_tail"]  # the help of mmtc, from its log
    failing = Reevaluator(tmp_path / "data2", tmp_path, ["mmtc", "no-such-command"], "x/y", None)
    failing.start("org")
    failing.wait(120)
    assert failing.status()["state"] == "failed" and failing.status()["exit_code"] == 2


def test_a_run_left_by_a_stopped_portal_is_interrupted_not_running(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / STATUS_FILE).write_text(json.dumps({"state": "running", "mode": "worker", "started_at": "x"}))
    r = Reevaluator(data, tmp_path, ["true"], "x/y", None)
    assert r.status()["state"] == "interrupted"
    r.start("org")
    r.wait(30)
    assert r.status()["state"] == "succeeded"


class FakeDeployments:
    """A DeploymentRunner whose runs stay at `state` until the test moves them."""

    api_url = "http://127.0.0.1:4200/api"

    def __init__(self) -> None:
        self.started: list[str] = []
        self.states: dict[str, dict] = {}

    def start(self, deployment: str) -> str:
        self.started.append(deployment)
        run_id = f"run-{len(self.started)}"
        self.states[run_id] = {"prefect_state": "Running"}
        return run_id

    def state(self, flow_run_id: str) -> dict:
        return dict(self.states[flow_run_id])


def test_with_a_deployment_runner_the_deployment_is_started_once_until_its_run_ends(tmp_path):
    import pytest

    from tasks.portal.reevaluate import AlreadyRunning

    runner = FakeDeployments()
    r = Reevaluator(tmp_path, tmp_path, ["true"], "nightly-reevaluation/nightly", runner)
    assert r.start("org")["flow_run_id"] == "run-1"
    assert runner.started == ["nightly-reevaluation/nightly"]
    with pytest.raises(AlreadyRunning):
        r.start("org")
    assert runner.started == ["nightly-reevaluation/nightly"]  # not started twice
    assert r.status()["prefect_state"] == "Running"
    runner.states["run-1"] = {"state": "succeeded", "prefect_state": "Completed"}
    assert r.status()["state"] == "succeeded"
    r.start("org")
    assert runner.started == ["nightly-reevaluation/nightly"] * 2


def test_a_deployment_run_seen_by_a_portal_without_prefect_stays_running(tmp_path):
    runner = FakeDeployments()
    Reevaluator(tmp_path, tmp_path, ["true"], "x/y", runner).start("org")
    without = Reevaluator(tmp_path, tmp_path, ["true"], "x/y", None)
    status = without.status()
    assert status["state"] == "running" and status["prefect_state"] == "unknown (no Prefect API configured)"
