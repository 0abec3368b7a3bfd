"""The organisers' "re-evaluate now": a deployment's run when a DeploymentRunner is given (the
Prefect one is flows/trigger.py, chosen by the command line), else the configured command in a
background worker. Never two at once: a file lock under the
portal's data path is held for the whole run (across portal processes), and a Prefect run in
flight blocks the next trigger until it reaches a final state.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from tasks.core.files import atomic_write_bytes

STATUS_FILE = "reevaluation.json"
LOG_FILE = "reevaluation.log"
LOCK_FILE = ".reevaluation.lock"


class AlreadyRunning(Exception):
    pass


class DeploymentRunner(Protocol):
    """Starts a deployment's run and reports its state (flows.trigger.PrefectDeployments)."""

    api_url: str  # where the runs go, shown to organisers

    def start(self, deployment: str) -> str:
        """The new run's id; the run is not waited for."""
        ...

    def state(self, flow_run_id: str) -> dict:
        """{"prefect_state": name}, plus "state" (succeeded/failed) once the run is final."""
        ...


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Reevaluator:
    def __init__(
        self,
        data_dir: Path,
        project_root: Path,
        command: list[str],
        deployment: str,
        runner: DeploymentRunner | None = None,
    ):
        self.dir = Path(data_dir)
        self.root = Path(project_root)
        self.command = command
        self.deployment = deployment
        self.runner = runner
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
        if data.get("mode") == "prefect" and data.get("state") == "running" and data.get("flow_run_id"):
            if self.runner is None:  # started by a portal that had a Prefect API; this one has none
                data["prefect_state"] = "unknown (no Prefect API configured)"
            else:
                data.update(self.runner.state(data["flow_run_id"]))
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
            if self.runner is not None:
                return self._start_deployment(self.runner, by)
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

    def _start_deployment(self, runner: DeploymentRunner, by: str) -> dict:
        data = {
            "state": "running",
            "mode": "prefect",
            "deployment": self.deployment,
            "flow_run_id": runner.start(self.deployment),
            "started_at": _now(),
            "by": by,
        }
        self._write(data)
        return data
