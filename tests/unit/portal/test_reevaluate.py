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


def test_with_a_prefect_api_the_deployment_is_started_once_until_its_run_ends(tmp_path, monkeypatch):
    import uuid

    import prefect.deployments
    import pytest

    from tasks.portal.reevaluate import AlreadyRunning

    started = []
    run_id = uuid.uuid4()

    def fake_run_deployment(name, timeout):
        started.append((name, timeout))
        return type("FlowRun", (), {"id": run_id})()

    monkeypatch.setattr(prefect.deployments, "run_deployment", fake_run_deployment)
    r = Reevaluator(tmp_path, tmp_path, ["true"], "nightly-reevaluation/nightly", "http://127.0.0.1:4200/api")
    state = {"prefect_state": "Running"}
    monkeypatch.setattr(r, "_prefect_state", lambda flow_run_id: dict(state) if flow_run_id == str(run_id) else {})
    assert r.start("org")["flow_run_id"] == str(run_id)
    assert started == [("nightly-reevaluation/nightly", 0)]  # timeout 0: started, not waited for
    with pytest.raises(AlreadyRunning):
        r.start("org")
    state.update({"state": "succeeded", "prefect_state": "Completed"})
    assert r.status()["state"] == "succeeded"
    r.start("org")
    assert len(started) == 2
