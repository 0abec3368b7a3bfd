"""Versioning what the portal takes in, as the intake does: `dvc add` of each submissions/
folder an upload or a selection wrote to (and git-commit / dvc push of the pointers, per
`nightly.commit` and `nightly.push`), by `tasks.submissions.intake.version_folders`.

One worker thread runs them one batch at a time (DVC takes a repository lock, so calls never
overlap), a few seconds after the last change so that a burst of uploads is one `dvc add`.
A batch that fails (the lock held by a running pipeline, a remote down) stays queued and is
tried again; its error is shown on the admin page. Outside a DVC repository, or with
`nightly.version: false`, nothing is versioned and the admin page says so.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from tasks.submissions.intake import version_folders


class Versioner:
    def __init__(self, repo: Path, submissions_root: Path, enabled, commit, push, delay_s: float = 3.0):
        self.repo = Path(repo)
        self.root = Path(submissions_root)
        self._enabled, self._commit, self._push = enabled, commit, push  # callables: params may change
        self.delay_s = delay_s
        self._pending: set[str] = set()
        self._last_change = 0.0
        self._cond = threading.Condition()
        self.last: dict = {"state": "nothing versioned yet"}
        self._thread: threading.Thread | None = None
        self._stop = False

    @property
    def active(self) -> bool:
        return bool(self._enabled()) and (self.repo / ".dvc").is_dir()

    def why_not(self) -> str | None:
        if not self._enabled():
            return "nightly.version is false: uploads are not versioned with DVC"
        if not (self.repo / ".dvc").is_dir():
            return f"{self.repo} is not a DVC repository: uploads are not versioned"
        return None

    def changed(self, *folders: str) -> None:
        """Folders relative to the submissions root, e.g. 'alpha', '_rejected/alpha', '_final/alpha'."""
        if not self.active:
            return
        with self._cond:
            self._pending |= set(folders)
            self._last_change = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="mmtc-versioning", daemon=True)
                self._thread.start()
            self._cond.notify()

    def pending(self) -> list[str]:
        with self._cond:
            return sorted(self._pending)

    def flush(self, timeout_s: float = 120) -> None:
        """Wait until nothing is pending (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.1)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                wait = self._last_change + self.delay_s - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                batch = sorted(self._pending)
            folders = [self.root / f for f in batch if (self.root / f).is_dir()]
            when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            try:
                done = version_folders(
                    self.repo,
                    folders,
                    f"Portal {when}: {', '.join(batch)}",
                    commit=bool(self._commit()),
                    push=bool(self._push()),
                )
                self.last = {"state": "ok", "at": when, "folders": batch, "done": done}
                with self._cond:
                    self._pending -= set(batch)
            except Exception as exc:  # kept queued, tried again after the delay; shown to organisers
                self.last = {"state": "failed, will retry", "at": when, "folders": batch, "error": str(exc)[-800:]}
                with self._cond:
                    self._last_change = time.monotonic() + 10 * self.delay_s
