"""Organisers' decisions on stored submissions: disqualify, withdraw, reinstate.

One append-only log, `submissions/_moderation.jsonl`, beside the submissions it speaks of (so it
is versioned with them and evaluate, which depends on `submissions/`, reruns when it changes).
A decision is never edited or removed: reinstating appends a new line, and the state of a
submission is its last line. Evaluate leaves out every submission whose state is not `active`,
so it leaves the board at the next run and comes back when reinstated.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from tasks.core.errors import InputError
from tasks.core.schema import LOCKS_DIR, MODERATION_LOG

ACTIONS = {"disqualify": "disqualified", "withdraw": "withdrawn", "reinstate": "active"}


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    submission: str  # <team>/<submission_id>
    action: str  # disqualify | withdraw | reinstate
    at: str  # ISO 8601 UTC
    by: str  # who decided (organiser, or the team for a withdrawal)
    reason: str = ""


def log_path(submissions_root: Path) -> Path:
    return Path(submissions_root) / MODERATION_LOG


def read_decisions(submissions_root: Path) -> list[Decision]:
    """Every decision, oldest first. A line that is not a decision stops with the line number."""
    path = log_path(submissions_root)
    if not path.is_file():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(Decision.model_validate_json(line))
        except ValidationError as exc:
            raise InputError(
                problem=f"line {n} is not a moderation decision ({exc.errors()[0]['msg']})",
                fix="restore the file from git or the DVC remote; it is append-only",
                file=str(path),
            ) from None
    return out


def states(submissions_root: Path) -> dict[str, str]:
    """submission key -> active | withdrawn | disqualified (the last decision wins)."""
    state: dict[str, str] = {}
    for d in read_decisions(submissions_root):
        state[d.submission] = ACTIONS[d.action]
    return state


def excluded(submissions_root: Path) -> dict[str, str]:
    """The submissions evaluate leaves out, with their state."""
    return {k: v for k, v in states(submissions_root).items() if v != "active"}


@contextlib.contextmanager
def _lock(submissions_root: Path) -> Iterator[None]:
    locks = Path(submissions_root) / LOCKS_DIR
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / "moderation.lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def decide(
    submissions_root: Path, submission: str, action: str, by: str, reason: str = "", now: datetime | None = None
) -> Decision:
    """Append one decision (durably). Refuses unknown actions, unknown submissions and no-op changes."""
    if action not in ACTIONS:
        raise InputError(problem=f"unknown action '{action}'", fix=f"use one of: {', '.join(ACTIONS)}")
    team, _, sid = submission.partition("/")
    root = Path(submissions_root)
    if not team or not sid or "/" in sid or team.startswith((".", "_")) or not (root / team / sid).is_dir():
        raise InputError(
            problem=f"no stored submission '{submission}'", fix="give <team>/<submission_id> of an accepted submission"
        )
    if any(c in reason for c in "\n\r\x00"):
        raise InputError(problem="the reason spans several lines", fix="write it on one line")
    when = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    decision = Decision(submission=submission, action=action, at=when, by=by, reason=reason[:500])
    with _lock(root):
        current = states(root).get(submission, "active")
        if current == ACTIONS[action]:
            raise InputError(problem=f"'{submission}' is {current} already", fix="nothing to do")
        with open(log_path(root), "ab") as f:
            f.write((decision.model_dump_json() + "\n").encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
    return decision


def history(submissions_root: Path, submission: str) -> list[Decision]:
    return [d for d in read_decisions(submissions_root) if d.submission == submission]
