"""Submissions: check a team's files against the public release, then store them atomically.

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
import csv
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import stat
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from slugify import slugify

from tasks.config import SubmitParams
from tasks.errors import InputError
from tasks.schema import (
    BASELINE_PREFIX,
    CARD,
    ID,
    LABEL,
    LOCKS_DIR,
    PAIR_ID,
    REJECTED_DIR,
    REJECTION_META,
    SCORE,
    STAGING_DIR,
    SUBMISSION_FORMATS,
    SUBMISSION_META,
    SubmissionRecord,
    TaskType,
)

MB = 1 << 20
CHUNK = 1 << 20
BATCH_ROWS = 1 << 16
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
SLUG_RULE = "1 to 40 lower-case letters, digits and hyphens, starting and ending with a letter or digit"
ID_TIME = "%Y%m%dT%H%M%SZ"
SUBMISSION_ID = re.compile(r"^(\d{8})T\d{6}Z-[0-9a-f]{8}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
ROWS_KEPT = 100  # offending rows remembered per problem (the message shows the first few)


# --- what a file must hold, from the public release ------------------------------------------


@dataclass(frozen=True)
class TaskContract:
    """What a submission file for one task must hold: read from the public release only."""

    task: str
    task_type: TaskType
    key: str  # id (classification) or pair_id (matching)
    test_file: str  # the release file whose keys must be predicted
    ids: pa.Array  # the test keys, as text
    classes: tuple[str, ...] = ()

    @property
    def required(self) -> tuple[str, ...]:
        return (self.key, LABEL)

    @property
    def optional(self) -> tuple[str, ...]:
        return (SCORE,) if self.task_type is TaskType.matching else ()

    def layout(self) -> str:
        return ",".join(self.required) + (f"[,{SCORE}]" if self.optional else "")


def load_contracts(public_root: Path, tasks: Sequence[str]) -> dict[str, TaskContract]:
    """The contract of every task of the challenge, from `data/public/<task>/` (card and test keys)."""
    contracts = {}
    for task in tasks:
        folder = Path(public_root) / task
        card_path = folder / CARD
        if not card_path.is_file():
            raise InputError(problem=f"the release of task '{task}' is missing ({card_path})", fix="build the release first: dvc repro (or mmtc ingest <task>)", task=task)
        card = json.loads(card_path.read_text(encoding="utf-8"))
        task_type = TaskType(card["type"])
        stem, key = ("test", ID) if task_type is TaskType.classification else ("test_pairs", PAIR_ID)
        ids = pq.read_table(folder / f"{stem}.parquet", columns=[key]).column(key).combine_chunks().cast(pa.string())
        classes = tuple(str(c) for c in card["classes"]["classes"]) if task_type is TaskType.classification else ()
        contracts[task] = TaskContract(task, task_type, key, f"{stem}.csv", ids, classes)
    return contracts


# --- names -------------------------------------------------------------------------------------


def check_slug(value: str, what: str) -> str:
    """Team and submission names become folder names: refuse anything but a plain slug."""
    if isinstance(value, str) and SLUG.match(value):
        return value
    text = str(value)
    if CONTROL.search(text):
        problem = f"the {what} name contains control or invisible characters"
    elif any(c in text for c in "<>&\"'`"):
        problem = f"the {what} name contains markup characters"
    elif "/" in text or "\\" in text or text.startswith(".") or ".." in text:
        problem = f"the {what} name would name a path outside its folder"
    else:
        problem = f"the {what} name is not a slug"
    suggestion = slugify(CONTROL.sub("", text), max_length=40) or "my-team"
    raise InputError(problem=problem, fix=f"use {SLUG_RULE}, e.g. '{suggestion}'", values=[text[:80]])


def check_team(team: str) -> str:
    check_slug(team, "team")
    if team.startswith(BASELINE_PREFIX):
        raise InputError(problem=f"team names starting with '{BASELINE_PREFIX}' are reserved for the organisers' baselines", fix="choose another team name", values=[team])
    return team


def check_description(text: str, max_chars: int) -> str:
    if len(text) > max_chars:
        raise InputError(problem=f"the description has {len(text)} characters, more than {max_chars}", fix="shorten it")
    if CONTROL.search(text):
        raise InputError(problem="the description contains control or invisible characters (line breaks included)", fix="write it on one line of plain text", values=[text[:80]])
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

    def summary(self) -> str:
        r = self.record
        if self.accepted:
            rows = ", ".join(f"{t} {n}" for t, n in sorted(self.rows.items()))
            again = " (already recorded: the same content in the same second)" if self.duplicate else ""
            return f"accepted {r.team}/{r.submission_id}{again}: {len(r.tasks)} task(s): {rows}\n  stored in {self.folder}"
        lines = [f"rejected {r.team}/{r.submission_id}: {len(self.errors)} problem(s); nothing will be scored", f"  recorded in {self.folder}"]
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
) -> SubmitResult:
    """Validate `source` (a folder of task files, or one task file) and record it, exactly once.

    Raises InputError for a call that names nothing storable (bad team or name, no such path);
    everything else ends in a recorded submission, accepted or rejected with its reasons.
    """
    check_team(team)
    name = check_slug(name if name is not None else default_name(source), "submission")
    description = check_description(description, params.max_description_chars)
    entries = _entries(Path(source))
    when = _utc_second(now)
    root = Path(submissions_root)
    stage = root / STAGING_DIR / f"{team}-{uuid.uuid4().hex}"
    stage.mkdir(parents=True)
    try:
        files, rows, errors = _stage_and_check(entries, stage, contracts, params.max_file_mb)
        digest = hashlib.sha256("".join(f"{n}\0{h}\n" for n, h in sorted(files.items())).encode()).hexdigest()
        record = SubmissionRecord(
            team=team,
            name=name,
            submission_id=f"{when.strftime(ID_TIME)}-{digest[:8]}",
            submitted_at=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            files=dict(sorted(files.items())),
            tasks=sorted(_task_of(n) for n in files if _task_of(n) in contracts),
            description=description,
        )
        if errors:
            return _record_rejected(root, stage, record, errors)
        return _record_accepted(root, stage, record, rows, params, when)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _utc_second(now: datetime | None) -> datetime:
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ValueError("submission times must be timezone-aware")
    return now.astimezone(timezone.utc).replace(microsecond=0)


def _task_of(file_name: str) -> str:
    return file_name.rsplit(".", 1)[0]


def _entries(source: Path) -> list[Path]:
    if not source.exists() and not source.is_symlink():
        raise InputError(problem=f"{source} does not exist", fix="give the path of a folder holding <task>.csv files, or of one such file")
    if source.is_dir() and not source.is_symlink():
        entries = sorted(source.iterdir())
        if not entries:
            raise InputError(problem=f"the folder {source} is empty", fix="put one file per task in it, named <task>.csv or <task>.parquet")
        return entries
    return [source]


def _stage_and_check(entries: list[Path], stage: Path, contracts: dict[str, TaskContract], cap_mb: float) -> tuple[dict[str, str], dict[str, int], list[InputError]]:
    """Copy every acceptable file into `stage` (hashing it, within the cap), then validate the copies."""
    files: dict[str, str] = {}
    errors: list[InputError] = []
    by_task: dict[str, list[str]] = {}
    for entry in entries:
        shown = entry.name
        mode = os.lstat(entry).st_mode
        if stat.S_ISLNK(mode):
            errors.append(InputError(problem="the entry is a link", fix="submit the file itself, not a link to it", file=shown))
            continue
        if not stat.S_ISREG(mode):
            errors.append(InputError(problem="the entry is not a regular file", fix="a submission is a flat folder of files, one per task; remove sub-folders and special files", file=shown))
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
            errors.append(InputError(problem=f"{len(names)} files for one task: {', '.join(names)}", fix="keep one file per task", task=task))
    rows: dict[str, int] = {}
    for shown in sorted(files):
        task = _task_of(shown)
        if len(by_task.get(task, [])) > 1:
            continue
        try:
            rows[task] = validate_file(stage / shown, contracts[task], shown)
        except InputError as exc:
            errors.append(exc)
        except _Problems as exc:
            errors.extend(exc.errors)
    if not files and not errors:
        errors.append(InputError(problem="no task file found", fix=f"name files <task>.csv or <task>.parquet with a task among: {', '.join(sorted(contracts))}"))
    return files, rows, errors


def _bad_file_name(shown: str, contracts: dict[str, TaskContract]) -> InputError:
    lower = shown.lower()
    for task in sorted(contracts):
        for ext in SUBMISSION_FORMATS:
            if lower == f"{task}{ext}":
                return InputError(problem="the file name is not exactly a task name and format", fix=f"rename it to {task}{ext}", file=repr(shown)[1:-1])
    return InputError(
        problem="the file name does not name a task of the challenge; the file was not kept",
        fix=f"name each file <task>.csv or <task>.parquet, with a task among: {', '.join(sorted(contracts))}",
        file=repr(shown)[1:-1][:120],
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
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


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


def _record_accepted(root: Path, stage: Path, record: SubmissionRecord, rows: dict[str, int], params: SubmitParams, when: datetime) -> SubmitResult:
    _write_json_durable(stage / SUBMISSION_META, record.model_dump())
    final = root / record.team / record.submission_id
    with _team_lock(root, record.team):
        if (final / SUBMISSION_META).is_file():
            return SubmitResult(True, record, final, rows=rows, duplicate=True)
        today, total = count_accepted(root / record.team, when.strftime("%Y%m%d"))
        limit = None
        if today >= params.max_per_day:
            limit = InputError(problem=f"team '{record.team}' has {today} accepted submissions on {when:%Y-%m-%d} (UTC), the daily limit", fix="submit again after midnight UTC; rejected submissions do not count")
        elif total >= params.max_total:
            limit = InputError(problem=f"team '{record.team}' has {total} accepted submissions, the limit for the whole challenge", fix="no more submissions can be accepted from this team")
        if limit is not None:
            (stage / SUBMISSION_META).unlink()
            return _record_rejected(root, stage, record, [limit])
        if not _move_in(stage, final):
            return SubmitResult(True, record, final, rows=rows, duplicate=True)
    return SubmitResult(True, record, final, rows=rows)


def _record_rejected(root: Path, stage: Path, record: SubmissionRecord, errors: list[InputError]) -> SubmitResult:
    data = record.model_dump() | {"reasons": [e.as_record() for e in errors]}
    _write_json_durable(stage / REJECTION_META, data)
    final = root / REJECTED_DIR / record.team / record.submission_id
    moved = _move_in(stage, final)
    return SubmitResult(False, record, final, errors=errors, duplicate=not moved)


# --- validation: streamed, against the release ----------------------------------------------------


class _Problems(Exception):
    def __init__(self, errors: list[InputError]):
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


def validate_file(path: Path, contract: TaskContract, shown: str | None = None) -> int:
    """Check one task file; returns its row count or raises InputError / _Problems (every problem found)."""
    shown = shown or Path(path).name
    if Path(path).suffix == ".parquet":
        return _validate_parquet(Path(path), contract, shown)
    return _validate_csv(Path(path), contract, shown)


class _Checks:
    """Row checks shared by CSV and Parquet, batch by batch: keys, labels, scores, coverage."""

    def __init__(self, contract: TaskContract, shown: str):
        self.c = contract
        self.shown = shown
        self.seen = np.zeros(len(contract.ids), dtype=np.int32)
        self.rows = 0
        self.found: dict[str, tuple[list[int], list, int]] = {}
        self.classes = pa.array(contract.classes, pa.string())

    def _note(self, kind: str, mask: np.ndarray, values: pa.Array | None, first: int) -> None:
        where = np.flatnonzero(mask)
        if not len(where):
            return
        rows, vals, n = self.found.get(kind, ([], [], 0))
        room = ROWS_KEPT - len(rows)
        if room > 0:
            rows.extend(int(first + i) for i in where[:room])
            if values is not None:
                vals.extend(values.take(pa.array(where[: max(0, 5 - len(vals))])).to_pylist())
        self.found[kind] = (rows, vals, n + len(where))

    def add(self, key: pa.Array, label: pa.Array, score: pa.Array | None, first: int) -> None:
        """`first`: the 0-based data-row index of the batch's first row."""
        n = len(key)
        self.rows += n
        idx = pc.index_in(key, value_set=self.c.ids).to_numpy(zero_copy_only=False)
        known = ~np.isnan(idx) if idx.dtype.kind == "f" else np.ones(n, bool)
        self._note("unknown", ~known, key, first)
        pos = np.where(known, np.nan_to_num(idx, nan=0), 0).astype(np.int64)
        repeat = np.zeros(n, bool)
        if known.any():
            kp = pos[known]
            again = self.seen[kp] > 0
            _, first_seen = np.unique(kp, return_index=True)
            within = np.ones(len(kp), bool)
            within[first_seen] = False
            repeat[np.flatnonzero(known)] = again | within
            np.add.at(self.seen, kp, 1)
        self._note("repeat", repeat, key, first)
        self._check_label(label, first)
        if score is not None:
            self._check_score(score, first)

    def _check_label(self, label: pa.Array, first: int) -> None:
        if self.c.task_type is TaskType.classification:
            ok = pc.fill_null(pc.is_in(label, value_set=self.classes), False).to_numpy(zero_copy_only=False)
        else:
            ok = pc.fill_null(pc.is_in(label, value_set=pa.array([0, 1], label.type) if pa.types.is_integer(label.type) else pa.array(["0", "1"])), False).to_numpy(zero_copy_only=False)
        self._note("label", ~ok, label, first)

    def _check_score(self, score: pa.Array, first: int) -> None:
        if pa.types.is_string(score.type):
            numbers = _parse_floats(score)
        else:
            numbers = pc.cast(score, pa.float64())
        x = numbers.to_numpy(zero_copy_only=False).astype(float)
        ok = (x >= 0) & (x <= 1)  # NaN and missing (NaN) fail both
        self._note("score", ~ok, score, first)

    def finish(self, line_of) -> list[InputError]:
        c, errors = self.c, []
        base = dict(task=c.task, file=self.shown)
        label_of = "line" if line_of is not None else "row"

        def rows(kind: str) -> list[int]:
            return [line_of(r) if line_of else r + 1 for r in self.found[kind][0]]

        def add(kind: str, column: str, problem: str, fix: str) -> None:
            if kind in self.found:
                _, vals, n = self.found[kind]
                errors.append(InputError(problem=problem.format(n=n, rows="row" if n == 1 else "rows"), fix=fix, column=column, rows=rows(kind), row_label=label_of, values=vals, **base))

        add("unknown", c.key, f"{c.key} not in the test set ({{n}} {{rows}})", f"predict exactly the {c.key} values of {c.test_file} in the release (no typos, spaces or ids of another task)")
        add("repeat", c.key, f"{c.key} given more than once ({{n}} repeated {{rows}})", f"give exactly one prediction per {c.key}; drop the repeated rows")
        if c.task_type is TaskType.classification:
            shown = ", ".join(repr(x) for x in c.classes[:3])
            add("label", LABEL, "label is not a class of this task ({n} {rows})", f"use the class names exactly as in card.json 'classes' ({len(c.classes)} classes: {shown}, ...)")
        else:
            add("label", LABEL, "label is not 0 or 1 ({n} {rows})", f"write 1 for a match and 0 otherwise; a confidence goes in the optional '{SCORE}' column")
        add("score", SCORE, "score is not a number in [0, 1] ({n} {rows})", f"give every row a '{SCORE}' in [0, 1] (a probability or a rescaled similarity), or drop the column")
        missing = np.flatnonzero(self.seen == 0)
        if len(missing):
            errors.append(InputError(
                problem=f"no prediction for {len(missing)} of the {len(c.ids)} test {c.key} values",
                fix=f"add one row for every {c.key} of {c.test_file}",
                column=c.key,
                values=c.ids.take(pa.array(missing[:5])).to_pylist(),
                **base,
            ))
        return errors


def _parse_floats(text: pa.Array) -> pa.Array:
    """Text to float64; anything that is not a plain number becomes NaN (and fails the range check)."""
    try:
        return pc.cast(text, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        ok = pc.fill_null(pc.match_substring_regex(text, r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"), False)
        cleaned = pc.if_else(ok, text, pa.scalar("nan"))
        return pc.cast(pc.utf8_trim_whitespace(cleaned), pa.float64())


def _check_header(names: list[str], contract: TaskContract, shown: str) -> list[InputError]:
    base = dict(task=contract.task, file=shown)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        return [InputError(problem=f"the header names {dupes} more than once", fix=f"write the header {contract.layout()}", column=dupes[0], **base)]
    missing = [c for c in contract.required if c not in names]
    extra = [n for n in names if n not in contract.required + contract.optional]
    if missing:
        hint = ""
        lowered = {n.strip().lower(): n for n in names}
        close = [lowered[m] for m in missing if m in lowered]
        if close:
            hint = f" ({', '.join(repr(x) for x in close)} differ only in case or spaces)"
        return [InputError(problem=f"the file has the columns {names[:8]} but needs {list(contract.required)}{hint}", fix=f"write the header {contract.layout()}", column=missing[0], **base)]
    if extra:
        return [InputError(problem=f"unexpected column(s) {extra[:8]}", fix=f"keep only {contract.layout()}", column=extra[0], **base)]
    return []


# --- CSV ----------------------------------------------------------------------------------------


@dataclass
class _TextScan:
    """One pass over the raw bytes: UTF-8 validity with the first bad line, and the empty lines."""

    header: str | None = None
    bad_line: int | None = None
    empty_lines: list[int] = field(default_factory=list)  # physical line numbers (1-based)
    open_quotes: list[int] = field(default_factory=list)  # lines ending inside a quoted value


def _scan_text(path: Path) -> _TextScan:
    scan = _TextScan()
    quoted = False
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                scan.bad_line = number
                return scan
            if number == 1:
                scan.header = text
            elif text in ("\n", "\r\n", "\r") and not quoted:
                scan.empty_lines.append(number)
            if raw.count(b'"') % 2:  # an escaped quote ("") counts twice and changes nothing
                quoted = not quoted
                if quoted and len(scan.open_quotes) < ROWS_KEPT:  # a value opens here and runs on
                    scan.open_quotes.append(number)
    return scan


class _LineMap:
    """Maps the i-th row pyarrow returns to its physical line: pyarrow skips empty lines and the
    ragged rows we told it to skip, so both are counted back in."""

    def __init__(self, empty_lines: list[int], skipped_rows: list[int]):
        self.empty = empty_lines
        self.skipped = sorted(skipped_rows)  # pyarrow's numbers: non-empty lines, header = 1

    def nonempty_to_physical(self, n: int) -> int:
        line = n
        for e in self.empty:  # few in practice; each empty line at or before it shifts it down
            if e <= line:
                line += 1
            else:
                break
        return line

    def __call__(self, row: int) -> int:
        n = row + 2  # non-empty line number when nothing was skipped
        for s in self.skipped:
            if s <= n:
                n += 1
            else:
                break
        return self.nonempty_to_physical(n)


def _validate_csv(path: Path, contract: TaskContract, shown: str) -> int:
    base = dict(task=contract.task, file=shown)
    scan = _scan_text(path)
    if scan.bad_line is not None:
        raise InputError(problem="the file is not UTF-8 text", fix="save it as UTF-8 (Excel: 'CSV UTF-8'; pandas: to_csv(..., encoding='utf-8'))", rows=[scan.bad_line], row_label="line", **base)
    if not scan.header or not scan.header.strip():
        raise InputError(problem="the file is empty or its first line is blank", fix=f"start with the header line {contract.layout()} and give one row per test {contract.key}", **base)
    if scan.open_quotes:
        raise InputError(problem="a quoted value runs over the end of the line", fix="write one prediction per line: ids and labels never contain line breaks; check for an unmatched quote", rows=scan.open_quotes, row_label="line", **base)
    names = next(csv.reader(io.StringIO(scan.header)))
    header_errors = _check_header(names, contract, shown)
    if header_errors:
        raise _Problems(header_errors)
    ragged: list[tuple[int, int]] = []

    def on_invalid_row(row) -> str:
        ragged.append((row.number, row.actual_columns))
        return "skip"

    checks = _Checks(contract, shown)
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(use_threads=False, block_size=8 * MB),
        parse_options=pacsv.ParseOptions(newlines_in_values=False, invalid_row_handler=on_invalid_row),
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=False, quoted_strings_can_be_null=False),
    )
    first = 0
    try:
        for batch in reader:
            score = batch.column(SCORE) if SCORE in names else None
            checks.add(batch.column(contract.key), batch.column(LABEL), score, first)
            first += batch.num_rows
    except pa.ArrowInvalid as exc:  # e.g. a quoted value running over a line end
        raise InputError(problem=f"the CSV cannot be parsed: {str(exc).splitlines()[0][:200]}", fix="write plain CSV: comma-separated, one row per line, quotes only around whole values", **base) from None
    lines = _LineMap(scan.empty_lines, [n for n, _ in ragged])
    errors = []
    if ragged:
        physical = [lines.nonempty_to_physical(n) for n, _ in ragged[:ROWS_KEPT]]
        counts = sorted({k for _, k in ragged})
        errors.append(InputError(problem=f"wrong number of fields: {', '.join(map(str, counts[:3]))} instead of {len(names)} ({len(ragged)} {'line' if len(ragged) == 1 else 'lines'})", fix="one prediction per line; quote values that contain commas", rows=physical, row_label="line", **base))
    errors += checks.finish(lines)
    if errors:
        raise _Problems(errors)
    return checks.rows


# --- Parquet ------------------------------------------------------------------------------------


def _validate_parquet(path: Path, contract: TaskContract, shown: str) -> int:
    base = dict(task=contract.task, file=shown)
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise InputError(problem=f"not a readable Parquet file ({type(exc).__name__})", fix="write it with pandas.DataFrame.to_parquet or pyarrow, or submit a CSV", **base) from None
    schema = pf.schema_arrow
    header_errors = _check_header(schema.names, contract, shown)
    if header_errors:
        raise _Problems(header_errors)
    type_errors = []
    key_t, label_t = schema.field(contract.key).type, schema.field(LABEL).type
    if not (_is_text(key_t) or pa.types.is_integer(key_t)):
        type_errors.append(InputError(problem=f"column type {key_t} cannot hold the {contract.key}s", fix="write the keys as text (string)", column=contract.key, **base))
    if contract.task_type is TaskType.classification and not _is_text(label_t):
        type_errors.append(InputError(problem=f"labels have type {label_t}; classes are text", fix="write the class names as text (string)", column=LABEL, **base))
    if contract.task_type is TaskType.matching and not (pa.types.is_integer(label_t) or pa.types.is_boolean(label_t)):
        type_errors.append(InputError(problem=f"labels have type {label_t}; matching labels are the integers 0 and 1", fix="write labels as integers 0/1", column=LABEL, **base))
    if SCORE in schema.names and not (pa.types.is_floating(schema.field(SCORE).type) or pa.types.is_integer(schema.field(SCORE).type)):
        type_errors.append(InputError(problem=f"scores have type {schema.field(SCORE).type}", fix="write scores as floating-point numbers in [0, 1]", column=SCORE, **base))
    if type_errors:
        raise _Problems(type_errors)
    checks = _Checks(contract, shown)
    first = 0
    try:
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=schema.names):
            key = pc.cast(_plain(batch.column(contract.key)), pa.string())
            label = _plain(batch.column(LABEL))
            label = pc.cast(label, pa.int64()) if contract.task_type is TaskType.matching else pc.cast(label, pa.string())
            score = batch.column(SCORE) if SCORE in schema.names else None
            checks.add(key, label, score, first)
            first += batch.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(problem=f"the Parquet data cannot be read: {str(exc).splitlines()[0][:200]}", fix="write the file again", **base) from None
    errors = checks.finish(None)
    if errors:
        raise _Problems(errors)
    return checks.rows


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or (pa.types.is_dictionary(t) and _is_text(t.value_type))


def _plain(values: pa.Array) -> pa.Array:
    return values.dictionary_decode() if pa.types.is_dictionary(values.type) else values
