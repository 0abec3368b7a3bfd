"""params.yaml as the portal sees it: read again when the file changes, so that an organiser's
edit (closing the challenge, a phase's dates, the limits) takes effect without a restart.

A file that does not load (a typo while editing) keeps the last good params and is reported
by `problem`; the portal goes on with what it had.
"""

from __future__ import annotations

import threading
from pathlib import Path

import yaml

from tasks.core.errors import InputError
from tasks.core.params import Params, load_params


class LiveParams:
    def __init__(self, path: Path | None, initial: Params):
        self.path = Path(path) if path else None
        self._params = initial
        self._stamp = self._stat()
        self._lock = threading.Lock()
        self.problem: str | None = None

    def _stat(self) -> tuple[int, int] | None:
        if self.path is None or not self.path.is_file():
            return None
        st = self.path.stat()
        return st.st_mtime_ns, st.st_size

    def current(self) -> Params:
        stamp = self._stat()
        if stamp != self._stamp and stamp is not None and self.path is not None:
            with self._lock:
                if stamp != self._stamp:
                    try:
                        self._params = load_params(self.path)
                        self.problem = None
                    except (InputError, yaml.YAMLError, OSError) as exc:
                        self.problem = f"{self.path} does not load; the portal keeps the previous params: {exc}"
                    self._stamp = stamp
        return self._params

    def __getattr__(self, name: str):
        return getattr(self.current(), name)
