"""Final selection, as Kaggle does it: before the close a team marks up to
`leaderboard.final_selections` of its accepted submissions as final; once the challenge closes
its private rank uses the best private score among them (the policy's pick when it marked none).

`select_finals()` is the one way to record a selection (`mmtc select`, the portal). Each call
writes a new file `submissions/_final/<team>/<version>.json` (read-only, never rewritten), so
the history of selections is kept and versioned with the submissions; the highest version is in
force. `read_final_picks()` gives the selections in force, for the leaderboard.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from tasks.core.clock import challenge_state
from tasks.core.errors import InputError
from tasks.core.params import ChallengeParams
from tasks.core.schema import FINAL_DIR, REJECTED_DIR, REJECTION_META, SUBMISSION_META, FinalSelection
from tasks.submissions.submit import SUBMISSION_ID, _team_lock, check_team

VERSION_FILE = re.compile(r"^(\d{4,})\.json$")


def select_finals(
    submissions_root: Path,
    team: str,
    submission_ids: Sequence[str],
    *,
    challenge: ChallengeParams,
    max_selections: int,
    now: datetime,
) -> FinalSelection:
    """Record `submission_ids` as `team`'s final selection at `now` and return the record.

    An empty list withdraws the selection. Raises InputError, recording nothing, when the
    challenge is closed (challenge.closed or the last phase has ended: selections are frozen),
    when more than `max_selections` are given, or when an id is not an accepted submission of
    this team (another team's, a rejected one, or none at all).
    """
    check_team(team)
    root = Path(submissions_root)
    state = challenge_state(challenge, now)
    if state.closed:
        raise InputError(
            problem=f"the challenge is closed ({state.closed_reason}): final selections are frozen",
            fix="nothing to do: the selection recorded before the close counts",
        )
    ids = list(submission_ids)
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise InputError(problem="a submission is listed more than once", fix="list each once", values=twice)
    if len(ids) > max_selections:
        raise InputError(
            problem=f"{len(ids)} submissions selected; a team may mark at most {max_selections} as final",
            fix=f"choose at most {max_selections} (leaderboard.final_selections)",
            values=ids,
        )
    for sid in ids:
        _check_own_accepted(root, team, sid)
    with _team_lock(root, team):
        folder = root / FINAL_DIR / team
        folder.mkdir(parents=True, exist_ok=True)
        versions = _versions(folder)
        record = FinalSelection(
            team=team,
            version=(versions[-1][0] + 1) if versions else 1,
            selected_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            submission_ids=ids,
        )
        path = folder / f"{record.version:04d}.json"
        tmp = folder / f".{record.version:04d}.{os.getpid()}.tmp"
        with open(tmp, "xb") as f:
            f.write((json.dumps(record.model_dump(), indent=2, sort_keys=True) + "\n").encode())
            f.flush()
            os.fsync(f.fileno())
        tmp.chmod(0o444)
        try:
            os.link(tmp, path)  # never replaces an existing version
        finally:
            tmp.unlink(missing_ok=True)
    return record


def _check_own_accepted(root: Path, team: str, sid: str) -> None:
    if not isinstance(sid, str) or not SUBMISSION_ID.match(sid):
        raise InputError(
            problem="not a submission id",
            fix="give ids as printed by `mmtc submit`, e.g. 20261123T165500Z-1a2b3c4d",
            values=[str(sid)[:80]],
        )
    if (root / team / sid / SUBMISSION_META).is_file():
        return
    if (root / REJECTED_DIR / team / sid / REJECTION_META).is_file():
        raise InputError(
            problem=f"submission {sid} of team '{team}' was rejected and is never scored",
            fix="select accepted submissions only",
        )
    raise InputError(
        problem=f"{sid} is not an accepted submission of team '{team}'",
        fix="select your own team's accepted submissions (see the ids `mmtc submit` printed)",
    )


def _versions(folder: Path) -> list[tuple[int, Path]]:
    out = []
    for p in folder.iterdir() if folder.is_dir() else ():
        m = VERSION_FILE.match(p.name)
        if m and p.is_file() and not p.is_symlink():
            out.append((int(m.group(1)), p))
    return sorted(out)


def current_selection(submissions_root: Path, team: str) -> FinalSelection | None:
    """The team's selection in force (its newest version), or None when it never selected."""
    versions = _versions(Path(submissions_root) / FINAL_DIR / team)
    if not versions:
        return None
    path = versions[-1][1]
    try:
        return FinalSelection.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise InputError(
            problem=f"the selection file is not valid: {exc.errors()[0]['msg']}",
            fix="selection files are written by `mmtc select` only; restore it from git/DVC",
            file=str(path),
        ) from None


def read_final_picks(submissions_root: Path) -> dict[str, list[str]]:
    """team -> its final submission ids, for every team whose selection in force is not empty."""
    root = Path(submissions_root) / FINAL_DIR
    picks = {}
    for team_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()) if root.is_dir() else ():
        record = current_selection(Path(submissions_root), team_dir.name)
        if record is not None and record.submission_ids:
            picks[team_dir.name] = list(record.submission_ids)
    return picks
