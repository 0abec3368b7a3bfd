"""The organisers' "re-evaluate now": the Prefect deployment when a Prefect API is configured,
else the configured command in a background worker. Never two at once: a file lock under the
portal's data path is held for the whole run (across portal processes), and a Prefect run in
flight blocks the next trigger until it reaches a final state.
"""

from __future__ import annotations

import fcntl
import inspect
import json
import os
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from tasks.core.files import atomic_write_bytes

STATUS_FILE = "reevaluation.json"
LOG_FILE = "reevaluation.log"
LOCK_FILE = ".reevaluation.lock"


class AlreadyRunning(Exception):
    pass


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Reevaluator:
    def __init__(
        self, data_dir: Path, project_root: Path, command: list[str], deployment: str, prefect_api: str | None
    ):
        self.dir = Path(data_dir)
        self.root = Path(project_root)
        self.command = command
        self.deployment = deployment
        self.prefect_api = prefect_api
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None

    # --- status ----------------------------------------------------------------------------------

    def status(self) -> dict:
        try:
            data = json.loads((self.dir / STATUS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {"state": "never run"}
        if data.get("state") == "running" and data.get("mode") == "worker" and not self._locked_elsewhere():
            data["state"] = "interrupted"  # the portal that ran it stopped
        if data.get("mode") == "prefect" and data.get("state") == "running":
            data.update(self._prefect_state(data.get("flow_run_id")))
        log = self.dir / LOG_FILE
        if log.is_file():
            data["log_tail"] = log.read_text(encoding="utf-8", errors="replace")[-4000:]
        return data

    def _write(self, data: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.dir / STATUS_FILE, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())

    def _locked_elsewhere(self) -> bool:
        if self._thread is not None and self._thread.is_alive():
            return True
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / LOCK_FILE, "a+b") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            return False

    # --- starting ----------------------------------------------------------------------------------

    def start(self, by: str) -> dict:
        """Start one run; AlreadyRunning when one is in flight (here, in another portal, or on Prefect)."""
        with self._guard:
            current = self.status()
            if current.get("state") == "running":
                raise AlreadyRunning(f"a re-evaluation started at {current.get('started_at')} is still running")
            if self.prefect_api:
                return self._start_prefect(by)
            return self._start_worker(by)

    def _start_worker(self, by: str) -> dict:
        self.dir.mkdir(parents=True, exist_ok=True)
        lock = open(self.dir / LOCK_FILE, "a+b")  # noqa: SIM115 (held by the worker thread, closed there)
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise AlreadyRunning("another portal process is running a re-evaluation") from None
        data = {"state": "running", "mode": "worker", "command": self.command, "started_at": _now(), "by": by}
        self._write(data)

        command = list(self.command)
        beside = Path(sys.executable).parent / command[0]
        if "/" not in command[0] and beside.is_file():  # `mmtc` of this environment, whatever PATH says
            command[0] = str(beside)

        def work() -> None:
            try:
                with open(self.dir / LOG_FILE, "wb") as log:
                    proc = subprocess.run(
                        command, cwd=self.root, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                    )
                code = proc.returncode
            except OSError as exc:
                (self.dir / LOG_FILE).write_text(f"could not start {self.command}: {exc}\n", encoding="utf-8")
                code = -1
            self._write(
                data | {"state": "succeeded" if code == 0 else "failed", "exit_code": code, "finished_at": _now()}
            )
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
            lock.close()

        self._thread = threading.Thread(target=work, name="mmtc-reevaluation", daemon=True)
        self._thread.start()
        return data

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _start_prefect(self, by: str) -> dict:
        from prefect.deployments import run_deployment

        flow_run = run_deployment(name=self.deployment, timeout=0)  # sync here (no running event loop)
        assert not inspect.isawaitable(flow_run)
        data = {
            "state": "running",
            "mode": "prefect",
            "deployment": self.deployment,
            "flow_run_id": str(flow_run.id),
            "started_at": _now(),
            "by": by,
        }
        self._write(data)
        return data

    def _prefect_state(self, flow_run_id: str | None) -> dict:
        if not flow_run_id:
            return {}
        try:
            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as client:
                run = client.read_flow_run(uuid.UUID(flow_run_id))
            state = run.state
            if state is not None and state.is_final():
                return {"state": "succeeded" if state.is_completed() else "failed", "prefect_state": state.name}
            return {"prefect_state": state.name if state else "unknown"}
        except Exception as exc:  # the API is down: say so, keep "running" (never start a second one blindly)
            return {"prefect_state": f"unknown ({type(exc).__name__})"}


def prefect_api_url() -> str | None:
    return os.environ.get("PREFECT_API_URL") or None
