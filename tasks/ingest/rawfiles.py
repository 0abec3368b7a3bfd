"""Read a contribution's raw files (CSV, TSV, JSON lines, Parquet) into Arrow, or say exactly why not.

The fast path is pyarrow. When it fails, a slow pass over the same file finds the lines
at fault, so the contributor gets line numbers and not a parser's internals.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from tasks.core.errors import InputError
from tasks.core.manifest import FileSpec

DELIMITERS = {"csv": ",", "tsv": "\t"}
ARROW_ENCODING = {"utf-8": "utf8", "latin-1": "latin1"}
MAX_DIAGNOSED = 20


@dataclass
class RawTable:
    """A raw file as read, and how to name its rows in messages."""

    key: str  # the manifest's name for the file: data, train, left, pairs...
    path: str  # relative to the task folder
    table: pa.Table
    row_label: str  # "line" for text files (header is line 1), "row" for Parquet
    first_row: int  # the number of the first data row in that scheme

    def row_numbers(self, indices) -> list[int]:
        return [self.first_row + int(i) for i in indices]


def read_raw(task_dir: Path, task_id: str, key: str, spec: FileSpec, na_values: list[str]) -> RawTable:
    path = Path(task_dir) / spec.path
    where: dict[str, Any] = dict(task=task_id, file=spec.path)
    if os.path.lexists(path) and not path.resolve().is_relative_to(Path(task_dir).resolve()):
        # a link out of the folder could publish anything readable here, another task's hidden labels included
        target = f"a link to {os.readlink(path)}" if path.is_symlink() else "inside a linked folder"
        raise InputError(
            problem=f"the file is {target}, outside the task folder",
            fix=f"copy the file into the task folder instead of linking to it (files.{key}.path in task.yaml)",
            **where,
        )
    if not path.is_file():
        raise InputError(
            problem="file not found",
            fix=f"add {spec.path} to the task folder, or correct files.{key}.path in task.yaml",
            **where,
        )
    if path.stat().st_size == 0:
        raise InputError(
            problem="file is empty", fix="export the data again; an empty file cannot be ingested", **where
        )
    na = spec.na_values if spec.na_values is not None else na_values
    if spec.file_format in DELIMITERS:
        table = _read_delimited(path, spec, na, where)
        raw = RawTable(key, spec.path, table, "line", 2)
    elif spec.file_format == "jsonl":
        raw = RawTable(key, spec.path, _read_jsonl(path, spec, na, where), "line", 1)
    else:
        raw = RawTable(key, spec.path, _read_parquet(path, where), "row", 1)
    if raw.table.num_rows == 0:
        raise InputError(problem="file has no data rows", fix="export the data again with its rows", **where)
    _check_columns(raw, spec, task_id)
    return raw


def _check_columns(raw: RawTable, spec: FileSpec, task_id: str) -> None:
    names = raw.table.column_names
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(
            problem=f"the file has several columns named {dupes}",
            fix="give every column a distinct name in the file",
            task=task_id,
            file=spec.path,
            column=dupes[0],
        )
    missing = [c for c in spec.columns if c not in names]
    if missing:
        close = ", ".join(repr(n) for n in names[:12])
        raise InputError(
            problem=f"the manifest names column(s) {missing} that the file does not have (it has {close})",
            fix=f"correct the column names under files.{raw.key}.columns in task.yaml, or add the column(s) to the file",
            task=task_id,
            file=spec.path,
            column=missing[0],
        )
    undeclared = [c for c in names if c not in spec.columns]
    if undeclared:
        raise InputError(
            problem=f"the file has column(s) {undeclared} that the manifest gives no role",
            fix=f"add them under files.{raw.key}.columns with a role (use `ignore` to drop them)",
            task=task_id,
            file=spec.path,
            column=undeclared[0],
        )


# --- CSV / TSV ---------------------------------------------------------------------------


def _text_reader(path: Path, encoding: str) -> io.TextIOWrapper:
    return open(path, encoding="utf-8-sig" if encoding == "utf-8" else encoding, newline="")


def _csv_dialect(fmt: str) -> dict:
    # TSV files rarely quote, and a stray inch mark (12" pizza) must not swallow the row
    return {"delimiter": DELIMITERS[fmt], "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {"delimiter": ","}


def _read_delimited(path: Path, spec: FileSpec, na: list[str], where: dict) -> pa.Table:
    header = _read_header(path, spec, where)
    ragged: list[str] = []

    def on_invalid_row(row) -> str:
        ragged.append(row.text)
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(encoding=ARROW_ENCODING[spec.encoding], block_size=8 << 20),
            parse_options=pacsv.ParseOptions(
                delimiter=DELIMITERS[spec.file_format],
                quote_char=False if spec.file_format == "tsv" else '"',
                newlines_in_values=spec.file_format == "csv",
                invalid_row_handler=on_invalid_row,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                null_values=na,
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        if "UTF8" in str(exc) or "utf-8" in str(exc).lower():
            raise _utf8_error(path, where) from None
        raise InputError(
            problem=f"cannot parse the file: {exc}",
            fix=f"check that it is a {spec.file_format.upper()} file with a header row",
            **where,
        ) from None
    if ragged:
        raise _ragged_error(path, spec, len(header), where)
    return table


def _read_header(path: Path, spec: FileSpec, where: dict) -> list[str]:
    try:
        with _text_reader(path, spec.encoding) as f:
            header = next(csv.reader(f, **_csv_dialect(spec.file_format)), None)
    except UnicodeDecodeError:
        raise _utf8_error(path, where) from None
    if not header or all(not h.strip() for h in header):
        raise InputError(
            problem="the first line is empty; a header row is expected",
            fix="put the column names on the first line",
            **where,
        )
    return header


def _utf8_error(path: Path, where: dict) -> InputError:
    """Find the lines that are not UTF-8 and show the bytes, so the contributor sees the culprit."""
    bad_lines: list[int] = []
    shown: list[bytes] = []
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad_lines.append(number)
                if len(shown) < 3:
                    shown.append(line[max(0, exc.start - 10) : exc.end + 10])
                if len(bad_lines) >= MAX_DIAGNOSED:
                    break
    return InputError(
        problem="the file is declared UTF-8 but has bytes that are not UTF-8 (latin-1 or Windows-1252, probably)",
        fix="declare `encoding: latin-1` for this file in task.yaml, or re-save the file as UTF-8",
        rows=bad_lines,
        row_label="line",
        values=shown,
        **where,
    )


def _ragged_error(path: Path, spec: FileSpec, width: int, where: dict) -> InputError:
    lines, counts = [], []
    with _text_reader(path, spec.encoding) as f:
        reader = csv.reader(f, **_csv_dialect(spec.file_format))
        next(reader)
        for row in reader:
            if row and len(row) != width:
                lines.append(reader.line_num)
                counts.append(len(row))
                if len(lines) >= MAX_DIAGNOSED:
                    break
    delimiter = "tab" if spec.file_format == "tsv" else "comma"
    return InputError(
        problem=f"rows have a different number of fields than the header's {width} (they have {sorted(set(counts))})",
        fix=f"quote values that contain a {delimiter}, or remove the extra or missing fields on those lines",
        rows=lines,
        row_label="line",
        **where,
    )


# --- JSON lines ----------------------------------------------------------------------------


def _read_jsonl(path: Path, spec: FileSpec, na: list[str], where: dict) -> pa.Table:
    data = path.read_bytes()
    if spec.encoding == "latin-1":
        data = data.decode("latin-1").encode("utf-8")
    try:
        table = pajson.read_json(io.BytesIO(data))
        if all(_is_scalar(t.type) for t in table.schema):
            return table
    except pa.ArrowInvalid:
        pass
    # Mixed types in a column (a product called 7UP next to one called Sprite), bad lines:
    # the slow path reads line by line and either builds the table or names the lines.
    return _read_jsonl_slow(path, data, where)


def _is_scalar(t: pa.DataType) -> bool:
    return not (pa.types.is_nested(t) or pa.types.is_binary(t))


def _read_jsonl_slow(path: Path, data: bytes, where: dict) -> pa.Table:
    records, bad, reasons = [], [], []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise _utf8_error(path, where) from None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            bad.append(number)
            reasons.append(exc.msg)
            continue
        if not isinstance(obj, dict):
            bad.append(number)
            reasons.append("not a JSON object")
            continue
        records.append(obj)
    if bad:
        raise InputError(
            problem=f"lines are not valid JSON objects ({reasons[0]})",
            fix='write one JSON object per line, e.g. {"id": 1, "title": "..."}',
            rows=bad,
            row_label="line",
            **where,
        )
    columns: dict[str, list] = {}
    for i, obj in enumerate(records):
        for k in obj:
            columns.setdefault(k, [None] * len(records))
        for k, v in obj.items():
            columns[k][i] = v
    arrays = {}
    for name, values in columns.items():
        nested = [i for i, v in enumerate(values) if isinstance(v, (list, dict))]
        if nested:
            raise InputError(
                problem="nested values (lists or objects) are not supported",
                fix="flatten the value into a string or separate columns",
                column=name,
                rows=[i + 1 for i in nested],
                row_label="line",
                **where,
            )
        numbers = all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values)
        if numbers:
            arrays[name] = pa.array(
                [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in values],
                pa.float64(),
            )
        else:
            arrays[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.table(arrays)


# --- Parquet ------------------------------------------------------------------------------


def _read_parquet(path: Path, where: dict) -> pa.Table:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(
            problem=f"not a readable Parquet file ({exc})",
            fix="write the file again with pyarrow or pandas `to_parquet`",
            **where,
        ) from None
    for field in table.schema:
        if not _is_scalar(field.type):
            raise InputError(
                problem=f"column type {field.type} is not supported",
                fix="store it as text, number or a path",
                column=field.name,
                **where,
            )
    return table.replace_schema_metadata(None)
