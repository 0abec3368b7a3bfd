"""Loaded by every Python process of a test's `dvc repro` (PYTHONPATH points here): records
the modules under tasks/ that an `mmtc` process loaded and the files under tasks/ it opened,
one JSON file per process in $MMTC_DEPS_AUDIT. Reading every source file to hash the code for
a snapshot's provenance (code_identity) is not a dependency, and is not recorded."""

import atexit
import json
import os
import sys

_OUT = os.environ.get("MMTC_DEPS_AUDIT")

if _OUT and os.path.basename(sys.argv[0] if sys.argv else "") == "mmtc":
    _opened: set[str] = set()

    def _in_code_identity() -> bool:
        frame = sys._getframe(0)
        while frame is not None:
            if frame.f_code.co_name == "code_identity":
                return True
            frame = frame.f_back
        return False

    def _hook(event: str, args: tuple) -> None:
        # an exception raised here would fail the open itself: the hook never raises
        if event != "open":
            return
        try:
            if isinstance(args[0], (str, bytes, os.PathLike)):
                path = os.path.abspath(os.fsdecode(args[0]))
                if "__pycache__" not in path and not _in_code_identity():
                    _opened.add(path)
        except Exception:  # a path that cannot be decoded is not one of ours
            pass

    sys.addaudithook(_hook)

    @atexit.register
    def _dump() -> None:
        modules = sorted({m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)})
        record = {"argv": sys.argv[1:], "modules": modules, "opened": sorted(_opened)}
        with open(os.path.join(_OUT, f"{os.getpid()}.json"), "w", encoding="utf-8") as f:
            json.dump(record, f)
