"""The organisers' phase control: the schedule lives in params.yaml (`challenge:`), the one
place every command reads it from, so the portal edits it there, keeping the organisers'
comments and layout (ruamel round-trip), checks the result loads, and swaps it in atomically.
The next evaluation run follows (the leaderboard stage depends on `challenge`), and the
portal's own pages at once (it reads params.yaml again when it changes).
"""

from __future__ import annotations

import io
from pathlib import Path

from ruamel.yaml import YAML

from tasks.core.files import atomic_write_bytes
from tasks.core.params import Params, load_params


def _yaml() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    return y


def edit_challenge(params_path: Path, changes: dict) -> Params:
    """Set keys of `challenge:` (e.g. {"closed": True}); raises InputError, writing nothing, when the
    result would not load."""
    path = Path(params_path)
    y = _yaml()
    data = y.load(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        data["challenge"][key] = value
    buf = io.StringIO()
    y.dump(data, buf)
    text = buf.getvalue().encode("utf-8")
    check = path.with_name(f".{path.name}.check")
    try:
        check.write_bytes(text)
        params = load_params(check)  # refused here: the file is left as it was
    finally:
        check.unlink(missing_ok=True)
    atomic_write_bytes(path, text)
    return params
