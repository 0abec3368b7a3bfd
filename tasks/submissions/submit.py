"""Storing submissions: check a team's files against the public release, then store them atomically.

`submit()` is the one way into `submissions/`: `mmtc submit`, the demo teams and the portal
call it. A submission is one file per task (`<task>.csv` or `<task>.parquet`). Every file is
copied into a private staging folder while it is read (the size cap holds even for a file
that grows or lies about its size), validated there, and the staging folder is renamed into
place in one step: `submissions/<team>/<submission_id>/` when it is sound,
`submissions/_rejected/<team>/<submission_id>/` with `rejection.json` when it is not.

There is no shared registry to update: one folder per submission, and the daily and total
limits are counted from those folders under a per-team `flock`, so concurrent submits are
each recorded exactly once and no team gets past its limit.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import unicodedata
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from slugify import slugify

from tasks.core.clock import describe_schedule, phase_at
from tasks.core.errors import InputError, InputErrors
from tasks.core.files import exchange_paths, fsync_dir, remove_unless_locked, sha256_file
from tasks.core.params import Phase, SubmitParams
from tasks.core.schema import (
    BASELINE_PREFIX,
    INVALID_TEAM_DIR,
    LOCKS_DIR,
    REJECTED_DIR,
    REJECTION_META,
    STAGING_DIR,
    SUBMISSION_FORMATS,
    SUBMISSION_META,
    SubmissionRecord,
    canonical_name,
)
from tasks.submissions.validate import MB, FileProblems, TaskContract, validate_file

CHUNK = 1 << 20
MAX_SLUG = 40
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
SLUG_RULE = "1 to 40 lower-case letters, digits and hyphens, starting and ending with a letter or digit"
ID_TIME = "%Y%m%dT%H%M%SZ"
SUBMISSION_ID = re.compile(r"^(\d{8})T\d{6}Z-[0-9a-f]{8}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


# --- names -------------------------------------------------------------------------------------


def check_slug(value: str, what: str) -> str:
    """Team and submission names become folder names: refuse anything but a plain slug."""
    if isinstance(value, str) and SLUG.match(value):
        return value
    text = str(value)
    odd = [(i, c) for i, c in enumerate(text) if not c.isascii() and not CONTROL.match(c)]
    if not text:
        problem = f"the {what} name is empty"
    elif CONTROL.search(text):
        problem = f"the {what} name contains control or invisible characters"
    elif len(text) > MAX_SLUG:
        problem = f"the {what} name has {len(text)} characters, more than {MAX_SLUG}"
    elif odd:  # a look-alike letter of another alphabet shows as its code, which the eye cannot tell apart
        shown = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, 'character')} at position {i + 1}" for i, c in odd[:3])
        problem = f"the {what} name has characters outside plain ASCII: {shown}"
    elif any(c in text for c in "<>&\"'`"):
        problem = f"the {what} name contains markup characters"
    elif "/" in text or "\\" in text or text.startswith(".") or ".." in text:
        problem = f"the {what} name would name a path outside its folder"
    else:
        problem = f"the {what} name is not a slug"
    suggestion = slugify(CONTROL.sub("", text), max_length=MAX_SLUG) or "my-team"
    raise InputError(problem=problem, fix=f"use {SLUG_RULE}, e.g. '{suggestion}'", values=[text[:80]])


def check_team(team: str) -> str:
    check_slug(team, "team")
    if team.startswith(BASELINE_PREFIX):
        raise InputError(
            problem=f"team names starting with '{BASELINE_PREFIX}' are reserved for the organisers' baselines",
            fix="choose another team name",
            values=[team],
        )
    return team


def check_description(text: str, max_chars: int) -> str:
    if len(text) > max_chars:
        raise InputError(
            problem=f"the description has {len(text)} characters, more than {max_chars}",
            fix=f"shorten it to {max_chars} characters or fewer",
        )
    if CONTROL.search(text):
        raise InputError(
            problem="the description contains control or invisible characters (line breaks included)",
            fix="write it on one line of plain text",
            values=[text[:80]],
        )
    return text


def default_name(source: Path) -> str:
    name = slugify(Path(source).stem if Path(source).is_file() else Path(source).name, max_length=40)
    return name if SLUG.match(name or "") else "submission"


# --- the result --------------------------------------------------------------------------------


@dataclass
class SubmitResult:
    accepted: bool
    record: SubmissionRecord
    folder: Path
    errors: list[InputError] = field(default_factory=list)
    duplicate: bool = False  # the same team sent the same content in the same second: recorded once
    rows: dict[str, int] = field(default_factory=dict)
    recorded: bool = True  # False: rejected past the team's daily cap of rejections, so not stored
    files_kept: bool = True  # False: rejected past the team's cap on stored rejected bytes (reasons kept)

    def summary(self) -> str:
        r = self.record
        if self.accepted:
            rows = ", ".join(f"{t} {n}" for t, n in sorted(self.rows.items()))
            again = " (already recorded: the same content in the same second)" if self.duplicate else ""
            return (
                f"accepted {r.team}/{r.submission_id}{again}: {len(r.tasks)} task(s): {rows}\n  stored in {self.folder}"
            )
        if not self.recorded:
            where = "  not recorded: the team's daily cap of rejected submissions is reached"
        elif not self.files_kept:
            where = f"  recorded in {self.folder} (reasons only: the team's cap on stored rejected files is reached)"
        else:
            where = f"  recorded in {self.folder}"
        lines = [f"rejected {r.team}/{r.submission_id}: {len(self.errors)} problem(s); nothing will be scored", where]
        lines += [f"  - {e}" for e in self.errors]
        return "\n".join(lines)


# --- the one way in ----------------------------------------------------------------------------


def submit(
    source: Path,
    team: str,
    *,
    submissions_root: Path,
    contracts: dict[str, TaskContract],
    params: SubmitParams,
    name: str | None = None,
    description: str = "",
    now: datetime | None = None,
    phases: Sequence[Phase] | None = None,
    closed: bool = False,
    organiser: bool = False,
    submission_id: str | None = None,
) -> SubmitResult:
    """Validate `source` (a folder of task files, or one task file) and record it, exactly once.

    Each accepted task file is kept as sent (read-only) with its canonical twin beside it
    (`<task>.canonical.parquet`, the predictions as validated), which is what evaluate scores.

    `phases` (from `ChallengeParams.schedule()`) and `closed` (`challenge.closed`) are the
    schedule: a submission at a time `now` outside every phase, for a task not open in the
    phase, or while closed, is recorded as rejected with a reason naming the phase dates, and
    the phase's own limits replace `params`' ones. `phases=None` checks no schedule (tests,
    tools replaying history).

    Raises InputError for a call that names nothing storable (bad team or name, no such path);
    everything else ends in a recorded submission, accepted or rejected with its reasons (past
    the team's daily cap of rejections, `recorded` is False and nothing is stored).

    `organiser=True` is the organisers' own way in (the baselines): it may use the reserved
    `baseline-` team names, is not counted against the limits or the schedule, stores under the
    given `submission_id` (replacing that folder whole, so a rerun of the train stage rewrites it),
    and raises on a file that fails validation (a bug of the pipeline, not a participant's attempt).
    """
    if organiser:
        check_slug(team, "team")
        name = name or default_name(source)  # the baselines' display titles: plain text, any length
        name = check_description(name, len(name))
        description = check_description(description, len(description))
    else:
        check_team(team)
        if submission_id is not None:
            raise ValueError("only the organisers choose a submission id")
        name = check_slug(name if name is not None else default_name(source), "submission")
        description = check_description(description, params.max_description_chars)
    entries = _entries(Path(source))
    return _take(
        entries,
        team,
        team,
        name,
        description,
        Path(submissions_root),
        contracts,
        params,
        now,
        None if organiser else phases,
        closed and not organiser,
        organiser=organiser,
        submission_id=submission_id,
    )


def record_refused(
    source: Path,
    team: str,
    reasons: Sequence[InputError],
    *,
    submissions_root: Path,
    contracts: dict[str, TaskContract],
    params: SubmitParams,
    now: datetime | None = None,
    team_folder: bool = True,
) -> SubmitResult:
    """Record an upload that `submit()` refuses outright (a bad team name, an empty folder) as
    rejected, its files kept, with `reasons` (and whatever else is wrong with the files).

    A team name that cannot be a folder lands under `_rejected/_invalid-team/`, the name as given
    kept in the record (truncated to 200 characters); the submission's name is derived from the
    path. `team_folder=False` files it there whatever the name (a name whose folders belong to
    a DVC stage). Used by the intake so that no upload leaves the inbox without a record."""
    folder_team = team if team_folder else INVALID_TEAM_DIR
    try:
        check_team(team)
    except InputError:
        folder_team = INVALID_TEAM_DIR
    try:
        entries = _entries(Path(source))
    except InputError as exc:
        entries, reasons = [], [*reasons, exc]
    return _take(
        entries,
        folder_team,
        str(team)[:200],
        default_name(source),
        "",
        Path(submissions_root),
        contracts,
        params,
        now,
        None,
        False,
        refusals=list(reasons),
    )


def _take(
    entries: list[Path],
    folder_team: str,
    team: str,
    name: str,
    description: str,
    root: Path,
    contracts: dict[str, TaskContract],
    params: SubmitParams,
    now: datetime | None,
    phases: Sequence[Phase] | None,
    closed: bool,
    refusals: list[InputError] | None = None,
    organiser: bool = False,
    submission_id: str | None = None,
) -> SubmitResult:
    when = _utc_second(now)
    stage, held = _new_stage(root, folder_team)
    sweep_staging(root)
    try:
        files, rows, errors = _stage_and_check(entries, stage, contracts, params.max_file_mb)
        if refusals:
            errors = refusals + errors
        listing = "".join(f"{n}\0{h}\n" for n, h in sorted(files.items()))
        if folder_team != team:  # teams sharing the _invalid-team folder keep their own ids
            listing = f"team\0{team}\n{listing}"
        digest = hashlib.sha256(listing.encode()).hexdigest()
        tasks = sorted(_task_of(n) for n in files if _task_of(n) in contracts)
        phase = None
        if phases is not None:
            phase, refusal = check_schedule(phases, closed, when, tasks)
            errors += refusal
        canonical = {canonical_name(t): sha256_file(stage / canonical_name(t)) for t in sorted(rows)}
        if errors:  # what was validated of the other files is not kept
            for path in canonical:
                (stage / path).unlink()
            canonical = {}
        record = SubmissionRecord(
            team=team,
            name=name,
            submission_id=submission_id or f"{when.strftime(ID_TIME)}-{digest[:8]}",
            submitted_at=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            files=dict(sorted(files.items())),
            tasks=tasks,
            baseline=organiser and team.startswith(BASELINE_PREFIX),
            description=description,
            canonical=canonical,
        )
        if organiser:
            if errors:
                raise InputErrors(errors)
            return _record_organiser(root, stage, record, rows)
        if errors:
            with _team_lock(root, folder_team):
                return _record_rejected(root, stage, record, errors, params, when, folder_team)
        return _record_accepted(root, stage, record, rows, params, when, phase)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        os.close(held)


NEW_STAGE = "new-"  # a staging folder not locked yet: never swept


def _new_stage(root: Path, folder_team: str) -> tuple[Path, int]:
    """A private staging folder, locked (flock) for as long as this process lives. It is made
    under a name the sweep skips and renamed once locked, so a sweep never takes a live one."""
    token = uuid.uuid4().hex
    fresh = root / STAGING_DIR / f"{NEW_STAGE}{token}"
    fresh.mkdir(parents=True)
    held = os.open(fresh, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)  # released by the kernel however this process ends
    stage = fresh.with_name(f"{folder_team}-{token}")
    try:
        os.rename(fresh, stage)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        os.close(held)
        raise
    return stage, held


def sweep_staging(root: Path) -> int:
    """Delete the staging folders that killed submits left (a live submit holds a lock on its own);
    returns how many. They never hold a final name: this only frees their space."""
    swept = 0
    staging = Path(root) / STAGING_DIR
    for left in sorted(staging.iterdir()) if staging.is_dir() else []:
        if not left.name.startswith(NEW_STAGE):
            swept += remove_unless_locked(left)
    return swept


def _utc_second(now: datetime | None) -> datetime:
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("submission times must be timezone-aware")
    return now.astimezone(UTC).replace(microsecond=0)


def check_schedule(
    phases: Sequence[Phase], closed: bool, when: datetime, tasks: Sequence[str]
) -> tuple[Phase | None, list[InputError]]:
    """The phase open at `when`, and the reasons a submission of `tasks` then is refused (none: accepted)."""
    schedule = describe_schedule(phases)
    if closed:
        return None, [
            InputError(
                problem=f"the challenge is closed (challenge.closed); its phases were: {schedule}",
                fix="no more submissions are taken",
            )
        ]
    phase = phase_at(phases, when)
    if phase is None:
        return None, [
            InputError(
                problem=f"no phase is open at {when:%Y-%m-%dT%H:%M:%SZ}; the phases are: {schedule}",
                fix="submit while a phase is open (times are UTC, each end excluded)",
            )
        ]
    shut = sorted(set(tasks) - set(phase.tasks)) if phase.tasks is not None else []
    if shut:
        return phase, [
            InputError(
                problem=f"task(s) {', '.join(shut)} are not open in phase {phase.name} ({phase.dates()}), "
                f"which takes {', '.join(phase.tasks or [])}",
                fix="leave those files out of this submission",
            )
        ]
    return phase, []


def _task_of(file_name: str) -> str:
    return file_name.rsplit(".", 1)[0]


def _entries(source: Path) -> list[Path]:
    if not source.exists() and not source.is_symlink():
        raise InputError(
            problem=f"{source} does not exist",
            fix="give the path of a folder holding <task>.csv files, or of one such file",
        )
    if source.is_dir() and not source.is_symlink():
        entries = sorted(source.iterdir())
        if not entries:
            raise InputError(
                problem=f"the folder {source} is empty",
                fix="put one file per task in it, named <task>.csv or <task>.parquet",
            )
        return entries
    return [source]


def _stage_and_check(
    entries: list[Path], stage: Path, contracts: dict[str, TaskContract], cap_mb: float
) -> tuple[dict[str, str], dict[str, int], list[InputError]]:
    """Copy every acceptable file into `stage` (hashing it, within the cap), then validate the copies."""
    files: dict[str, str] = {}
    errors: list[InputError] = []
    by_task: dict[str, list[str]] = {}
    for entry in entries:
        shown = entry.name
        mode = os.lstat(entry).st_mode
        if stat.S_ISLNK(mode):
            errors.append(
                InputError(problem="the entry is a link", fix="submit the file itself, not a link to it", file=shown)
            )
            continue
        if stat.S_ISDIR(mode):
            errors.append(
                InputError(
                    problem="the entry is a sub-folder; its files were not read",
                    fix="put the task files themselves in the submission folder (zip the files, not their folder)",
                    file=shown,
                )
            )
            continue
        if not stat.S_ISREG(mode):
            errors.append(
                InputError(
                    problem="the entry is not a regular file",
                    fix="a submission is a flat folder of files, one per task; remove sub-folders and special files",
                    file=shown,
                )
            )
            continue
        task, suffix = _task_of(shown), Path(shown).suffix
        if task not in contracts or suffix not in SUBMISSION_FORMATS:
            errors.append(_bad_file_name(shown, contracts))
            continue
        try:
            files[shown] = _copy_capped(entry, stage / shown, cap_mb)
        except InputError as exc:
            errors.append(exc)
            continue
        by_task.setdefault(task, []).append(shown)
    for task, names in sorted(by_task.items()):
        if len(names) > 1:
            errors.append(
                InputError(
                    problem=f"{len(names)} files for one task: {', '.join(names)}",
                    fix="keep one file per task",
                    task=task,
                )
            )
    rows: dict[str, int] = {}
    for shown in sorted(files):
        task = _task_of(shown)
        if len(by_task.get(task, [])) > 1:
            continue
        try:
            rows[task] = validate_file(
                stage / shown, contracts[task], shown, max_mb=cap_mb, canonical=stage / canonical_name(task)
            )
        except InputError as exc:
            errors.append(exc)
        except FileProblems as exc:
            errors.extend(exc.errors)
    if not files and not errors:
        errors.append(
            InputError(
                problem="no task file found",
                fix=f"name files <task>.csv or <task>.parquet with a task among: {', '.join(sorted(contracts))}",
            )
        )
    return files, rows, errors


COMPRESSED = (".gz", ".zip", ".bz2", ".xz", ".7z")


def _bad_file_name(shown: str, contracts: dict[str, TaskContract]) -> InputError:
    lower = shown.lower()
    file = repr(shown)[1:-1][:120]
    for task in sorted(contracts):
        for ext in SUBMISSION_FORMATS:
            if lower == f"{task}{ext}":
                return InputError(
                    problem="the file name is not exactly a task name and format",
                    fix=f"rename it to {task}{ext}",
                    file=file,
                )
    if shown.startswith("."):
        return InputError(
            problem="a hidden file is not a task file; the file was not kept",
            fix="delete hidden files from the folder (macOS Finder writes .DS_Store) and submit again",
            file=file,
        )
    near = [t for t in sorted(contracts, key=len, reverse=True) if re.match(rf"{re.escape(t)}(?![a-z0-9])", lower)]
    if near:  # shop_kind (1).csv, shop_kind.txt, shop_kind.csv.gz: the task is plain, the name is not
        near_task, suffix = near[0], Path(lower).suffix
        ext = ".parquet" if ".parquet" in lower else ".csv"
        if suffix in COMPRESSED:
            return InputError(
                problem=f"the file is compressed ({suffix}); the file was not kept",
                fix=f"decompress it and submit {near_task}{ext} itself",
                file=file,
            )
        return InputError(
            problem="the file name is not exactly a task name and format; the file was not kept",
            fix=f"rename it to {near_task}{suffix}"
            if suffix in SUBMISSION_FORMATS
            else f"submit it as {near_task}.csv (comma-separated text) or {near_task}.parquet",
            file=file,
        )
    return InputError(
        problem="the file name does not name a task of the challenge; the file was not kept",
        fix=f"name each file <task>.csv or <task>.parquet, with a task among: {', '.join(sorted(contracts))}",
        file=file,
    )


def _copy_capped(src: Path, dest: Path, cap_mb: float) -> str:
    """Copy while hashing; stop as soon as the cap is passed (the size on disk is not trusted)."""
    cap = int(cap_mb * MB)
    h = hashlib.sha256()
    total = 0
    with open(src, "rb") as fin, open(dest, "xb") as fout:
        while block := fin.read(CHUNK):
            total += len(block)
            if total > cap:
                fout.close()
                dest.unlink()
                raise InputError(
                    problem=f"the file is larger than the cap of {cap_mb:g} MB (reading stopped there; the file was not kept)",
                    fix="submit only the prediction columns; Parquet is much smaller than CSV",
                    file=src.name,
                )
            h.update(block)
            fout.write(block)
        fout.flush()
        os.fsync(fout.fileno())
    return h.hexdigest()


# --- storage ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _team_lock(root: Path, team: str) -> Iterator[None]:
    """One writer per team at a time while its limits are counted and its folder renamed in."""
    locks = root / LOCKS_DIR
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{team}.lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _write_json_durable(path: Path, data: dict) -> None:
    with open(path, "xb") as f:
        f.write((json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode())
        f.flush()
        os.fsync(f.fileno())


def _move_in(stage: Path, final: Path) -> bool:
    """Rename the staged folder into place; False when that submission is recorded already."""
    final.parent.mkdir(parents=True, exist_ok=True)
    for path in stage.iterdir():
        path.chmod(0o444)  # stored submissions are never edited
    try:
        os.rename(stage, final)  # atomic; fails when `final` exists (and is not empty)
    except OSError:
        if final.is_dir():
            return False
        raise
    fsync_dir(final.parent)
    return True


def _record_organiser(root: Path, stage: Path, record: SubmissionRecord, rows: dict[str, int]) -> SubmitResult:
    """Store an organiser's submission under its given id, swapping out a previous one whole."""
    _write_json_durable(stage / SUBMISSION_META, record.model_dump())
    final = root / record.team / record.submission_id
    with _team_lock(root, record.team):
        if not final.exists():
            _move_in(stage, final)
            return SubmitResult(True, record, final, rows=rows)
        for path in stage.iterdir():
            path.chmod(0o444)
        if not exchange_paths(stage, final):  # no atomic exchange: a moment without the folder
            old = stage.with_name(f"{stage.name}-old")
            os.rename(final, old)
            os.rename(stage, final)
            shutil.rmtree(old, ignore_errors=True)
        fsync_dir(final.parent)
    return SubmitResult(True, record, final, rows=rows)


def count_accepted(team_dir: Path, day: str) -> tuple[int, int]:
    """(accepted on `day` (yyyymmdd, UTC), accepted in total), counted from the team's folders."""
    today = total = 0
    if team_dir.is_dir():
        for entry in team_dir.iterdir():
            m = SUBMISSION_ID.match(entry.name)
            if m and (entry / SUBMISSION_META).is_file():
                total += 1
                today += m.group(1) == day
    return today, total


def count_in_phase(team_dir: Path, phase: Phase) -> int:
    """Accepted submissions of a team whose id time lies in `phase`."""
    n = 0
    if team_dir.is_dir():
        for entry in team_dir.iterdir():
            if SUBMISSION_ID.match(entry.name) and (entry / SUBMISSION_META).is_file():
                taken = datetime.strptime(entry.name[:16], ID_TIME).replace(tzinfo=UTC)
                n += phase.contains(taken)
    return n


def _record_accepted(
    root: Path,
    stage: Path,
    record: SubmissionRecord,
    rows: dict[str, int],
    params: SubmitParams,
    when: datetime,
    phase: Phase | None = None,
) -> SubmitResult:
    _write_json_durable(stage / SUBMISSION_META, record.model_dump())
    final = root / record.team / record.submission_id
    with _team_lock(root, record.team):
        if (final / SUBMISSION_META).is_file():
            return SubmitResult(True, record, final, rows=rows, duplicate=True)
        today, total = count_accepted(root / record.team, when.strftime("%Y%m%d"))
        max_per_day = params.max_per_day
        in_phase = ""
        if phase is not None and phase.max_per_day is not None:
            max_per_day, in_phase = phase.max_per_day, f" in phase {phase.name}"
        limit = None
        if phase is not None and phase.max_total is not None:
            total_limit, total_what = phase.max_total, f"the limit of phase {phase.name} ({phase.dates()})"
            total = count_in_phase(root / record.team, phase)
        else:
            total_limit, total_what = params.max_total, "the limit for the whole challenge"
        if today >= max_per_day:
            limit = InputError(
                problem=f"team '{record.team}' has {today} accepted submissions on {when:%Y-%m-%d} (UTC), the daily limit{in_phase}",
                fix="submit again after midnight UTC; rejected submissions do not count",
            )
        elif total >= total_limit:
            limit = InputError(
                problem=f"team '{record.team}' has {total} accepted submissions, {total_what}",
                fix="no more submissions can be accepted from this team",
            )
        if limit is not None:
            (stage / SUBMISSION_META).unlink()
            return _record_rejected(root, stage, record, [limit], params, when)
        if not _move_in(stage, final):
            return SubmitResult(True, record, final, rows=rows, duplicate=True)
    return SubmitResult(True, record, final, rows=rows)


def count_rejected(team_dir: Path, day: str) -> tuple[int, int]:
    """(rejections recorded on `day` (yyyymmdd, UTC), bytes of the rejected files kept), from the folders."""
    today = kept = 0
    if team_dir.is_dir():
        for entry in team_dir.iterdir():
            m = SUBMISSION_ID.match(entry.name)
            if m and (entry / REJECTION_META).is_file():
                today += m.group(1) == day
                kept += sum(p.stat().st_size for p in entry.iterdir() if p.name != REJECTION_META)
    return today, kept


def _record_rejected(
    root: Path,
    stage: Path,
    record: SubmissionRecord,
    errors: list[InputError],
    params: SubmitParams,
    when: datetime,
    folder_team: str | None = None,
) -> SubmitResult:
    """Record a rejection (the caller holds the folder's lock): within the daily cap of rejections,
    and with its files only while the folder's rejected files stay within their byte cap."""
    folder = root / REJECTED_DIR / (folder_team or record.team)
    final = folder / record.submission_id
    if (final / REJECTION_META).is_file():
        return SubmitResult(False, record, final, errors=errors, duplicate=True)
    today, kept = count_rejected(folder, when.strftime("%Y%m%d"))
    if today >= params.max_rejected_per_day:
        return SubmitResult(False, record, final, errors=errors, recorded=False, files_kept=False)
    data_files = [p for p in stage.iterdir() if p.name != SUBMISSION_META]
    size = sum(p.stat().st_size for p in data_files)
    files_kept = kept + size <= params.max_rejected_mb * MB
    if not files_kept:
        for path in data_files:
            path.unlink()
    data = record.model_dump() | {"reasons": [e.as_record() for e in errors], "files_kept": files_kept}
    _write_json_durable(stage / REJECTION_META, data)
    moved = _move_in(stage, final)
    return SubmitResult(False, record, final, errors=errors, duplicate=not moved, files_kept=files_kept)
