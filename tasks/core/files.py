"""File helpers every stage shares: hashing, atomic writes, Parquet + CSV twins."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_tree(root: Path) -> str:
    """One digest of a folder: relative paths and contents, in sorted order."""
    root = Path(root)
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(sha256_file(path).encode())
        h.update(b"\n")
    return h.hexdigest()


def write_json(path: Path, data: object) -> None:
    """Sorted keys and a trailing newline, so equal content gives equal bytes."""
    atomic_write_bytes(
        path, (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode()
    )


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a published file is readable like any other
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_parquet(table: pa.Table, path: Path) -> None:
    """Deterministic Parquet: no pandas metadata, fixed compression, one row group per 128k rows."""
    table = table.replace_schema_metadata(None)
    pq.write_table(table, path, compression="zstd", row_group_size=128_000, write_statistics=True, store_schema=False)


def write_csv(table: pa.Table, path: Path) -> None:
    """UTF-8 CSV, quoting only where needed; the header too (pyarrow would quote every name)."""
    with open(path, "wb") as f:
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(table.column_names)
        f.write(header.getvalue().encode("utf-8"))
        pacsv.write_csv(table, f, write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed"))


def write_twins(table: pa.Table, folder: Path, stem: str) -> list[Path]:
    """The release convention: every table as `<stem>.parquet` and `<stem>.csv`."""
    parquet, csv = folder / f"{stem}.parquet", folder / f"{stem}.csv"
    write_parquet(table, parquet)
    write_csv(table, csv)
    return [parquet, csv]


@contextlib.contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Build a folder beside its final place and swap it in only when the body succeeds.

    Readers never see a half-written release, and a failed run leaves the previous one.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    stage.chmod(0o755)
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(stage, final)
    shutil.rmtree(old, ignore_errors=True)
