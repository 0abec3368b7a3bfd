"""Starting a deployment's run and reading its state, for callers outside Prefect (the portal's
"re-evaluate now"). Orchestration lives here so that tasks/ never imports Prefect.

    runner = configured_deployments()      # PREFECT_API_URL says which server
    run_id = runner.start("nightly-reevaluation/nightly")
    runner.state(run_id)                   # {"state": "succeeded", "prefect_state": "Completed"}
"""

from __future__ import annotations

import inspect
import os
import uuid


class PrefectDeployments:
    """The Prefect API named by PREFECT_API_URL, seen as the portal's DeploymentRunner."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url  # shown on the admin page; Prefect itself reads PREFECT_API_URL

    def start(self, deployment: str) -> str:
        """Create a run of `deployment` and return its id without waiting for it (timeout 0)."""
        from prefect.deployments import run_deployment

        flow_run = run_deployment(name=deployment, timeout=0)  # sync here: no running event loop
        if inspect.isawaitable(flow_run):
            raise RuntimeError("run_deployment returned a coroutine: call start() outside an event loop")
        return str(flow_run.id)

    def state(self, flow_run_id: str) -> dict:
        """`state` (succeeded/failed) once the run is final, and Prefect's own state name always.

        An unreachable API is reported, never taken for an end: the caller keeps "running" and
        does not start a second run blindly.
        """
        try:
            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as client:
                run = client.read_flow_run(uuid.UUID(flow_run_id))
        except Exception as exc:  # any failure of the API is "unknown", never an end
            return {"prefect_state": f"unknown ({type(exc).__name__})"}
        state = run.state
        if state is not None and state.is_final():
            return {"state": "succeeded" if state.is_completed() else "failed", "prefect_state": state.name}
        return {"prefect_state": state.name if state else "unknown"}


def configured_deployments() -> PrefectDeployments | None:
    """The Prefect API when PREFECT_API_URL is set, else None (the portal then runs its command)."""
    url = os.environ.get("PREFECT_API_URL")
    return PrefectDeployments(url) if url else None
