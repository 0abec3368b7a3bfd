"""flows/trigger.py: a deployment's run started without waiting, its state read back, an
unreachable API reported as unknown (never as an end)."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import prefect.client.orchestration
import prefect.deployments

from flows.trigger import PrefectDeployments, configured_deployments


def test_start_creates_a_run_without_waiting_for_it(monkeypatch):
    calls = []
    run_id = uuid.uuid4()

    def fake_run_deployment(name, timeout):
        calls.append((name, timeout))
        return SimpleNamespace(id=run_id)

    monkeypatch.setattr(prefect.deployments, "run_deployment", fake_run_deployment)
    assert PrefectDeployments("http://x/api").start("nightly-reevaluation/nightly") == str(run_id)
    assert calls == [("nightly-reevaluation/nightly", 0)]  # timeout 0: started, not waited for


class _State:
    def __init__(self, name: str, final: bool, completed: bool) -> None:
        self.name, self._final, self._completed = name, final, completed

    def is_final(self) -> bool:
        return self._final

    def is_completed(self) -> bool:
        return self._completed


def _client_with(state):
    class Client:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read_flow_run(self, flow_run_id):
            if state is None:
                raise ConnectionError("refused")
            return SimpleNamespace(state=state)

    return lambda sync_client: Client()


def test_state_is_final_only_when_prefect_says_so(monkeypatch):
    runner, run_id = PrefectDeployments("http://x/api"), str(uuid.uuid4())
    cases = [
        (_State("Running", False, False), {"prefect_state": "Running"}),
        (_State("Completed", True, True), {"state": "succeeded", "prefect_state": "Completed"}),
        (_State("Crashed", True, False), {"state": "failed", "prefect_state": "Crashed"}),
        (None, {"prefect_state": "unknown (ConnectionError)"}),  # the API is down: not an end
    ]
    for state, expected in cases:
        monkeypatch.setattr(prefect.client.orchestration, "get_client", _client_with(state))
        assert runner.state(run_id) == expected


def test_the_api_is_chosen_by_prefect_api_url(monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert configured_deployments() is None
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    runner = configured_deployments()
    assert runner is not None and runner.api_url == "http://127.0.0.1:4200/api"
