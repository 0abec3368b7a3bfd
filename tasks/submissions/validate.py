"""Validation of one submitted task file against the public release, streamed batch by batch.

A task's contract (its test keys, its classes) is read from `data/public/<task>/` only. CSV is
read with every column as text, with the line numbers a person sees in an editor; Parquet is
read by row batches. Every problem is reported at once, each naming the task, the file, the
column, the first offending lines and the fix.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tasks.core.errors import InputError
from tasks.core.files import write_parquet
from tasks.core.schema import CARD, ID, LABEL, PAIR_ID, SCORE, TaskType

MB = 1 << 20
SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}
BATCH_ROWS = 1 << 16
ROWS_KEPT = 100  # offending rows remembered per problem (the message shows the first few)
# A line of a prediction file holds a key, a label and maybe a score: far below this. A longer one
# is refused while it is read (never held whole), and no line can then straddle pyarrow's blocks.
MAX_LINE_BYTES = 1 * MB
CSV_BLOCK_BYTES = 8 * MB  # pyarrow's block size: larger than MAX_LINE_BYTES, so every line fits one block


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


def unreleased(public_root: Path, tasks: Sequence[str]) -> dict[str, str]:
    """task -> why it has no release (its ingest failed or has not run), for the tasks without one."""
    missing = {}
    for task in tasks:
        card_path = Path(public_root) / task / CARD
        if not card_path.is_file():
            missing[task] = f"no release ({card_path} not found): its ingest failed or has not run"
    return missing


def load_contracts(public_root: Path, tasks: Sequence[str]) -> dict[str, TaskContract]:
    """The contract of every task of the challenge that has a release, from `data/public/<task>/`
    (card and test keys). A task without one (a broken contribution) is left out, so the others
    go on; when no task has a release at all there is nothing to submit to and it raises."""
    contracts = {}
    missing = unreleased(public_root, tasks)
    if tasks and len(missing) == len(tasks):
        raise InputError(
            problem=f"no task of the challenge has a release under {public_root}",
            fix="build the releases first: dvc repro (or mmtc ingest <task>)",
        )
    for task in tasks:
        folder = Path(public_root) / task
        card_path = folder / CARD
        if task in missing:
            continue
        card = json.loads(card_path.read_text(encoding="utf-8"))
        task_type = TaskType(card["type"])
        stem, key = ("test", ID) if task_type is TaskType.classification else ("test_pairs", PAIR_ID)
        ids = pq.read_table(folder / f"{stem}.parquet", columns=[key]).column(key).combine_chunks().cast(pa.string())
        classes = tuple(str(c) for c in card["classes"]["classes"]) if task_type is TaskType.classification else ()
        contracts[task] = TaskContract(task, task_type, key, f"{stem}.csv", ids, classes)
    return contracts


# --- validation: streamed, against the release ----------------------------------------------------


def canonical_label_type(task_type: TaskType) -> pa.DataType:
    return pa.string() if task_type is TaskType.classification else pa.int8()


def canonical_schema(task_type: TaskType, with_score: bool) -> pa.Schema:
    """The canonical file of an accepted task file: key as text, label typed, score as float64."""
    key = ID if task_type is TaskType.classification else PAIR_ID
    fields = [pa.field(key, pa.string()), pa.field(LABEL, canonical_label_type(task_type))]
    return pa.schema(fields + ([pa.field(SCORE, pa.float64())] if with_score else []))


def max_rows(contract: TaskContract) -> int:
    """Rows a file may hold before it is refused unread: one per key, and a few repeated or unknown
    ones still reported row by row (their lines help a team more than a count)."""
    return len(contract.ids) + ROWS_KEPT


def too_many_rows(contract: TaskContract, shown: str, rows: str, line: int | None = None) -> InputError:
    where = (
        f" (reading stopped at data row {line:,})" if line is not None else " (from the file's footer; no row was read)"
    )
    return InputError(
        problem=f"the file has {rows} rows{where}, the test set {len(contract.ids):,} {contract.key} values",
        fix=f"give exactly one row per {contract.key} of {contract.test_file}",
        task=contract.task,
        file=shown,
    )


class FileProblems(Exception):
    """Every problem found in one file."""

    def __init__(self, errors: list[InputError]):
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


def validate_file(
    path: Path,
    contract: TaskContract,
    shown: str | None = None,
    *,
    max_mb: float | None = None,
    canonical: Path | None = None,
) -> int:
    """Check one task file; returns its row count or raises InputError / FileProblems (every problem found).

    `max_mb` caps what a Parquet file may unpack to (its footer's uncompressed size), like the
    size cap of a CSV; the row count is bounded from the footer too, before any row is read.
    `canonical`: where to write the validated predictions as typed Parquet (canonical_schema),
    sorted by key, when the file is sound: the one thing evaluate reads."""
    shown = shown or Path(path).name
    if Path(path).suffix == ".parquet":
        checks = _validate_parquet(Path(path), contract, shown, max_mb)
    else:
        checks = _validate_csv(Path(path), contract, shown)
    if canonical is not None:
        write_parquet(checks.canonical(), Path(canonical))
    return checks.rows


class _Checks:
    """Row checks shared by CSV and Parquet, batch by batch: keys, labels, scores, coverage."""

    def __init__(self, contract: TaskContract, shown: str):
        self.c = contract
        self.shown = shown
        self.seen = np.zeros(len(contract.ids), dtype=np.int32)
        self.rows = 0
        self.found: dict[str, tuple[list[int], list, int]] = {}
        self.classes = pa.array(contract.classes, pa.string())
        self.parts: list[tuple[pa.Array, pa.Array, pa.Array | None]] = []  # typed, for the canonical file

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
        if self.rows > max_rows(self.c):  # a file that lies in its footer is stopped here too
            raise too_many_rows(self.c, self.shown, f"more than {max_rows(self.c):,}", first + n)
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
        numbers = self._check_score(score, first) if score is not None else None
        self._check_label(label, first)
        self.parts.append((key, label, numbers))

    def _check_label(self, label: pa.Array, first: int) -> None:
        if self.c.task_type is TaskType.classification:
            ok = pc.fill_null(pc.is_in(label, value_set=self.classes), False).to_numpy(zero_copy_only=False)
        else:
            ok = pc.fill_null(
                pc.is_in(
                    label,
                    value_set=pa.array([0, 1], label.type) if pa.types.is_integer(label.type) else pa.array(["0", "1"]),
                ),
                False,
            ).to_numpy(zero_copy_only=False)
        self._note("label", ~ok, label, first)

    def _check_score(self, score: pa.Array, first: int) -> pa.Array:
        if pa.types.is_string(score.type):
            numbers = _parse_floats(score)
        else:
            numbers = pc.cast(score, pa.float64())
        x = numbers.to_numpy(zero_copy_only=False).astype(float)
        ok = (x >= 0) & (x <= 1)  # NaN and missing (NaN) fail both
        self._note("score", ~ok, score, first)
        return numbers

    def canonical(self) -> pa.Table:
        """The validated predictions, typed and sorted by key: what evaluate scores. Only for a
        file without problems (every label a class or 0/1, every score a number in [0, 1])."""
        c = self.c
        keys = pa.chunked_array([k for k, _, _ in self.parts], pa.string())
        labels = pa.chunked_array(
            [lab for _, lab, _ in self.parts], self.parts[0][1].type if self.parts else pa.string()
        )
        columns = {c.key: keys, LABEL: pc.cast(labels, canonical_label_type(c.task_type))}
        if self.parts and self.parts[0][2] is not None:
            columns[SCORE] = pa.chunked_array([s for _, _, s in self.parts], pa.float64())
        table = pa.table(columns) if self.parts else canonical_schema(c.task_type, False).empty_table()
        return table.sort_by([(c.key, "ascending")]).combine_chunks()

    def finish(self, line_of) -> list[InputError]:
        c, errors = self.c, []
        base: dict[str, Any] = dict(task=c.task, file=self.shown)
        label_of = "line" if line_of is not None else "row"

        def rows(kind: str) -> list[int]:
            return [line_of(r) if line_of else r + 1 for r in self.found[kind][0]]

        def add(kind: str, column: str, problem: str, fix: str) -> None:
            if kind in self.found:
                _, vals, n = self.found[kind]
                errors.append(
                    InputError(
                        problem=problem.format(n=n, rows="row" if n == 1 else "rows"),
                        fix=fix,
                        column=column,
                        rows=rows(kind),
                        row_label=label_of,
                        values=vals,
                        **base,
                    )
                )

        header_again = c.key in self.found.get("unknown", ([], [], 0))[1]
        add(
            "unknown",
            c.key,
            f"{c.key} not in the test set ({{n}} {{rows}})",
            f"predict exactly the {c.key} values of {c.test_file} in the release (no typos, spaces or ids of another task)"
            + ("; a row repeats the header: were two files joined?" if header_again else ""),
        )
        add(
            "repeat",
            c.key,
            f"{c.key} given more than once ({{n}} repeated {{rows}})",
            f"give exactly one prediction per {c.key}; drop the repeated rows",
        )
        if c.task_type is TaskType.classification:
            shown = ", ".join(repr(x) for x in c.classes[:3]) + (", ..." if len(c.classes) > 3 else "")
            add(
                "label",
                LABEL,
                "label is not a class of this task ({n} {rows})",
                f"use the class names exactly as in card.json 'classes' ({len(c.classes)} classes: {shown})"
                + _label_hint(self.found.get("label", ([], [], 0))[1], c.classes),
            )
        else:
            add(
                "label",
                LABEL,
                "label is not 0 or 1 ({n} {rows})",
                f"write 1 for a match and 0 otherwise; a confidence goes in the optional '{SCORE}' column",
            )
        add(
            "score",
            SCORE,
            "score is not a number in [0, 1] ({n} {rows})",
            f"give every row a '{SCORE}' in [0, 1] (a probability or a rescaled similarity), or drop the column",
        )
        missing = np.flatnonzero(self.seen == 0)
        if len(missing):
            errors.append(
                InputError(
                    problem=f"no prediction for {len(missing)} of the {len(c.ids)} test {c.key} values",
                    fix=f"add one row for every {c.key} of {c.test_file}",
                    column=c.key,
                    values=c.ids.take(pa.array(missing[:5])).to_pylist(),
                    **base,
                )
            )
        return errors


def _label_hint(found: list, classes: Sequence[str]) -> str:
    """A hint for the commonest wrong labels: a class with other case or spaces, or class numbers."""
    folded = {c.strip().lower() for c in classes}
    close = [v for v in found if isinstance(v, str) and v not in classes and v.strip().lower() in folded]
    if close:
        verb = "differs" if len(close) == 1 else "differ"
        return f"; {', '.join(repr(v) for v in close[:3])} {verb} from a class only in case or spaces"
    numbers = [v for v in found if isinstance(v, str) and v.strip().isdigit()]
    if found and len(numbers) == len(found) and not any(c.isdigit() for c in classes):
        return "; write the class names, not their numbers"
    return ""


def _parse_floats(text: pa.Array) -> pa.Array:
    """Text to float64; anything that is not a plain number becomes NaN (and fails the range check)."""
    try:
        return pc.cast(text, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        ok = pc.fill_null(pc.match_substring_regex(text, r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"), False)
        cleaned = pc.if_else(ok, text, pa.scalar("nan"))
        return pc.cast(pc.utf8_trim_whitespace(cleaned), pa.float64())


def _check_header(names: list[str], contract: TaskContract, shown: str) -> list[InputError]:
    base: dict[str, Any] = dict(task=contract.task, file=shown)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        return [
            InputError(
                problem=f"the header names {dupes} more than once",
                fix=f"write the header {contract.layout()}",
                column=dupes[0],
                **base,
            )
        ]
    missing = [c for c in contract.required if c not in names]
    extra = [n for n in names if n not in contract.required + contract.optional]
    if missing:
        hint, fix = "", f"write the header {contract.layout()}"
        lowered = {n.strip().lower(): n for n in names}
        close = [lowered[m] for m in missing if m in lowered]
        separator = next((sep for sep in (";", "\t", "|") if len(names) == 1 and sep in names[0]), None)
        if close:
            hint = f" ({', '.join(repr(x) for x in close)} differ only in case or spaces)"
        elif separator:
            hint = f" (the values are separated by {SEPARATORS[separator]}, not commas)"
            fix += " and separate the values with commas (pandas: to_csv(..., sep=','))"
        elif names and names[0].lstrip().startswith("#"):
            hint = " (line 1 is a comment)"
            fix = f"make the header {contract.layout()} the first line; comment lines are not allowed"
        return [
            InputError(
                problem=f"the file has the columns {names[:8]} but needs {list(contract.required)}{hint}",
                fix=fix,
                column=missing[0],
                **base,
            )
        ]
    if "" in extra:
        return [
            InputError(
                problem=f"column {names.index('') + 1} of the header has no name",
                fix=f"keep only {contract.layout()}: drop the trailing comma at the end of each line, or the unnamed "
                "index column (pandas: to_csv(..., index=False))",
                **base,
            )
        ]
    if extra:
        index = [n for n in extra if n.startswith(("__index_level_", "Unnamed: "))]
        return [
            InputError(
                problem=f"unexpected column(s) {extra[:8]}",
                fix=f"keep only {contract.layout()}"
                + (f"; {index[0]!r} is a pandas index: write with index=False" if index else ""),
                column=extra[0],
                **base,
            )
        ]
    return []


# --- what a file holds ----------------------------------------------------------------------------

PARQUET_MAGIC = b"PAR1"
# first bytes of what teams send under a .csv or .parquet name by mistake -> (what it is, the fix)
SIGNATURES = {
    b"\x1f\x8b": ("gzip-compressed data", "decompress it (gunzip) and submit the file itself"),
    b"PK\x03\x04": (
        "a zip archive (an Excel .xlsx workbook is one)",
        "unzip it and submit the file itself; from Excel, use Save As 'CSV UTF-8'",
    ),
    b"\xd0\xcf\x11\xe0": ("an Excel .xls workbook", "in Excel, use Save As 'CSV UTF-8'"),
    b"\xff\xfe": ("UTF-16 text", "save it as UTF-8 (Excel: 'CSV UTF-8'; pandas: to_csv(..., encoding='utf-8'))"),
    b"\xfe\xff": ("UTF-16 text", "save it as UTF-8 (Excel: 'CSV UTF-8'; pandas: to_csv(..., encoding='utf-8'))"),
}


def _ends(path: Path) -> tuple[bytes, bytes, int]:
    """The first and the last 4 bytes of a file, and its size."""
    with open(path, "rb") as f:
        head = f.read(4)
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - 4))
        return head, f.read(4), size


def _signature(head: bytes) -> tuple[str, str] | None:
    """(what the file is, the fix) when its first bytes say it is a known format other than CSV and Parquet."""
    return next((found for magic, found in SIGNATURES.items() if head.startswith(magic)), None)


# --- CSV ----------------------------------------------------------------------------------------


@dataclass
class _TextScan:
    """One pass over the raw bytes: UTF-8 validity with the first bad line, and the empty lines."""

    header: str | None = None
    bad_line: int | None = None
    empty_lines: list[int] = field(default_factory=list)  # physical line numbers (1-based)
    open_quotes: list[int] = field(default_factory=list)  # lines ending inside a quoted value
    long_line: int | None = None  # the first line longer than MAX_LINE_BYTES (reading stopped there)


def _scan_text(path: Path) -> _TextScan:
    scan = _TextScan()
    quoted = False
    with open(path, "rb") as f:
        number = 0
        while raw := f.readline(MAX_LINE_BYTES + 1):  # bounded: a 20 MB line is never held whole
            number += 1
            if len(raw) > MAX_LINE_BYTES:
                scan.long_line = number
                return scan
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


def _validate_csv(path: Path, contract: TaskContract, shown: str) -> _Checks:
    base: dict[str, Any] = dict(task=contract.task, file=shown)
    head, _, _ = _ends(path)
    if head == PARQUET_MAGIC:
        raise InputError(
            problem="the file is Parquet data under a .csv name",
            fix=f"rename it to {contract.task}.parquet",
            **base,
        )
    signature = _signature(head)
    if signature is not None:
        raise InputError(problem=f"the file is {signature[0]}, not UTF-8 CSV text", fix=signature[1], **base)
    scan = _scan_text(path)
    if scan.long_line is not None:
        raise InputError(
            problem=f"the line is longer than {MAX_LINE_BYTES // MB} MB (reading stopped there)",
            fix="write one short prediction per line (key, label, score); check for a missing line break or a runaway value",
            rows=[scan.long_line],
            row_label="line",
            **base,
        )
    if scan.bad_line is not None:
        raise InputError(
            problem="the file is not UTF-8 text",
            fix="save it as UTF-8 (Excel: 'CSV UTF-8'; pandas: to_csv(..., encoding='utf-8'))",
            rows=[scan.bad_line],
            row_label="line",
            **base,
        )
    if not scan.header or not scan.header.strip():
        raise InputError(
            problem="the file is empty or its first line is blank",
            fix=f"start with the header line {contract.layout()} and give one row per test {contract.key}",
            **base,
        )
    if scan.open_quotes:
        raise InputError(
            problem="a quoted value runs over the end of the line",
            fix="write one prediction per line: ids and labels never contain line breaks; check for an unmatched quote",
            rows=scan.open_quotes,
            row_label="line",
            **base,
        )
    if "\r" in scan.header.removesuffix("\n").removesuffix("\r"):
        raise InputError(
            problem="the lines end with a carriage return only (CR, the line end of old Mac files)",
            fix="save it with LF or CRLF line ends (Excel: 'CSV UTF-8'; pandas: to_csv)",
            rows=[1],
            row_label="line",
            **base,
        )
    try:
        names = next(csv.reader(io.StringIO(scan.header)))
    except csv.Error as exc:
        raise InputError(
            problem=f"the header cannot be parsed: {str(exc)[:200]}",
            fix=f"start with the header line {contract.layout()}",
            rows=[1],
            row_label="line",
            **base,
        ) from None
    header_errors = _check_header(names, contract, shown)
    if header_errors:
        raise FileProblems(header_errors)
    ragged: list[tuple[int, int]] = []

    def on_invalid_row(row) -> str:
        ragged.append((row.number, row.actual_columns))
        return "skip"

    checks = _Checks(contract, shown)
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(use_threads=False, block_size=CSV_BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(newlines_in_values=False, invalid_row_handler=on_invalid_row),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    )
    first = 0
    try:
        for batch in reader:
            score = batch.column(SCORE) if SCORE in names else None
            checks.add(batch.column(contract.key), batch.column(LABEL), score, first)
            first += batch.num_rows
    except pa.ArrowInvalid as exc:  # e.g. a quoted value running over a line end
        text = str(exc).splitlines()[0][:200]
        if "straddl" in text:  # pyarrow's words for a row larger than its block (the line cap prevents it)
            text = f"a row is larger than {CSV_BLOCK_BYTES // MB} MB"
        raise InputError(
            problem=f"the CSV cannot be parsed: {text}",
            fix="write plain CSV: comma-separated, one row per line, quotes only around whole values",
            **base,
        ) from None
    lines = _LineMap(scan.empty_lines, [n for n, _ in ragged])
    errors = []
    if ragged:
        physical = [lines.nonempty_to_physical(n) for n, _ in ragged[:ROWS_KEPT]]
        counts = sorted({k for _, k in ragged})
        errors.append(
            InputError(
                problem=f"wrong number of fields: {', '.join(map(str, counts[:3]))} instead of {len(names)} ({len(ragged)} {'line' if len(ragged) == 1 else 'lines'})",
                fix="one prediction per line; quote values that contain commas",
                rows=physical,
                row_label="line",
                **base,
            )
        )
    errors += checks.finish(lines)
    if errors:
        raise FileProblems(errors)
    return checks


# --- Parquet ------------------------------------------------------------------------------------


def _validate_parquet(path: Path, contract: TaskContract, shown: str, max_mb: float | None) -> _Checks:
    base: dict[str, Any] = dict(task=contract.task, file=shown)
    head, tail, size = _ends(path)
    if not size:
        raise InputError(
            problem="the file is empty",
            fix="write it again with pandas.DataFrame.to_parquet or pyarrow, or submit a CSV",
            **base,
        )
    if head != PARQUET_MAGIC:
        signature = _signature(head)
        if signature:
            what = f"it is {signature[0]}"
        elif head.isascii() and head.decode().isprintable():
            what = "it holds text (a CSV?), not Parquet data"
        else:
            what = f"it does not start with the Parquet signature ({PARQUET_MAGIC.decode()})"
        raise InputError(
            problem=f"not a readable Parquet file: {what}",
            fix=f"write it with pandas.DataFrame.to_parquet or pyarrow; a CSV file is named {contract.task}.csv",
            **base,
        )
    if tail != PARQUET_MAGIC:
        raise InputError(
            problem="not a readable Parquet file: it is cut short (its footer is missing)",
            fix="the write or the upload did not finish: write the file again and send it whole",
            **base,
        )
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise InputError(
            problem=f"not a readable Parquet file ({type(exc).__name__})",
            fix="write it with pandas.DataFrame.to_parquet or pyarrow, or submit a CSV",
            **base,
        ) from None
    schema = pf.schema_arrow
    header_errors = _check_header(schema.names, contract, shown)
    if header_errors:
        raise FileProblems(header_errors)
    # the footer's counts, before any row is read: 40 million repeated rows in 312 KB cost no time
    meta = pf.metadata
    rows = max(meta.num_rows, sum(meta.row_group(i).num_rows for i in range(meta.num_row_groups)))
    if rows > max_rows(contract):
        raise too_many_rows(contract, shown, f"{rows:,}")
    unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if max_mb is not None and unpacked > max_mb * MB:
        raise InputError(
            problem=f"the data unpacks to {unpacked / MB:,.1f} MB, more than the cap of {max_mb:g} MB (from the file's footer; no row was read)",
            fix="submit only the prediction columns, one row per key",
            **base,
        )
    type_errors = []
    key_t, label_t = schema.field(contract.key).type, schema.field(LABEL).type
    if not (_is_text(key_t) or pa.types.is_integer(key_t)):
        type_errors.append(
            InputError(
                problem=f"column type {key_t} cannot hold the {contract.key}s",
                fix="write the keys as text (string)",
                column=contract.key,
                **base,
            )
        )
    if contract.task_type is TaskType.classification and not _is_text(label_t):
        type_errors.append(
            InputError(
                problem=f"labels have type {label_t}; classes are text",
                fix="write the class names as text (string)",
                column=LABEL,
                **base,
            )
        )
    if contract.task_type is TaskType.matching and not (pa.types.is_integer(label_t) or pa.types.is_boolean(label_t)):
        type_errors.append(
            InputError(
                problem=f"labels have type {label_t}; matching labels are the integers 0 and 1",
                fix="write labels as integers 0/1",
                column=LABEL,
                **base,
            )
        )
    if SCORE in schema.names and not (
        pa.types.is_floating(schema.field(SCORE).type) or pa.types.is_integer(schema.field(SCORE).type)
    ):
        type_errors.append(
            InputError(
                problem=f"scores have type {schema.field(SCORE).type}",
                fix="write scores as floating-point numbers in [0, 1]",
                column=SCORE,
                **base,
            )
        )
    if type_errors:
        raise FileProblems(type_errors)
    checks = _Checks(contract, shown)
    first = 0
    try:
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=schema.names):
            key = pc.cast(_plain(batch.column(contract.key)), pa.string())
            label = _plain(batch.column(LABEL))
            label = (
                pc.cast(label, pa.int64()) if contract.task_type is TaskType.matching else pc.cast(label, pa.string())
            )
            score = batch.column(SCORE) if SCORE in schema.names else None
            checks.add(key, label, score, first)
            first += batch.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(
            problem=f"the Parquet data cannot be read: {str(exc).splitlines()[0][:200]}",
            fix="write the file again",
            **base,
        ) from None
    errors = checks.finish(None)
    if errors:
        raise FileProblems(errors)
    return checks


def _is_text(t: pa.DataType) -> bool:
    return (
        pa.types.is_string(t) or pa.types.is_large_string(t) or (pa.types.is_dictionary(t) and _is_text(t.value_type))
    )


def _plain(values: pa.Array) -> pa.Array:
    return values.dictionary_decode() if pa.types.is_dictionary(values.type) else values
