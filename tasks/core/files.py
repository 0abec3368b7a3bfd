"""File helpers every stage shares: hashing, atomic writes, Parquet + CSV twins, folders swapped in whole."""

from __future__ import annotations

import contextlib
import csv
import ctypes
import errno
import fcntl
import functools
import glob
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
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
    """One digest of a folder: relative paths and contents, in sorted order.

    A link counts by what it says, not by what it points to: hashing never reads outside the folder.
    """
    root = Path(root)
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            digest = "link:" + os.readlink(path)
        elif path.is_file():
            digest = sha256_file(path)
        else:
            continue
        h.update(path.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(digest.encode())
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

    Readers never see a half-written folder, and a failed or killed run leaves the previous one.
    """
    with staged_dirs([final]) as (stage,):
        yield stage


# --- folders swapped in whole -----------------------------------------------------------------
#
# A stage folder is built beside its final place (same file system, so a rename is atomic) as
# `.<name>.stage-<random>`, held with flock(2) while its builder lives. It is swapped in with one
# renameat2(RENAME_EXCHANGE), so the final name always holds a whole folder, the previous or the
# new one. Several folders (a release and its hidden labels) are committed together: a journal
# written before the first swap decides the commit, and whoever next stages the same folders
# finishes it (roll-forward). Stages left by killed runs are swept then too.

STAGE_MARK, OLD_MARK = "stage-", "old-"
RENAME_EXCHANGE = 2  # linux/fs.h
AT_FDCWD = -100


@contextlib.contextmanager
def staged_dirs(finals: Sequence[Path]) -> Iterator[list[Path]]:
    """Build several folders beside their final places; swap them all in when the body succeeds.

    A kill at any point leaves each final folder whole (previous or new). Between the first and the
    last swap of a killed run the folders can differ in version; its journal (beside the first
    folder, so put the private one first) says so, and the next staging of these folders, or
    `finish_commit`, completes the swaps before anything else.
    """
    finals = [Path(f) for f in finals]
    for final in finals:
        final.parent.mkdir(parents=True, exist_ok=True)
    journal = commit_journal(finals[0])
    held: list[tuple[Path, int]] = []
    try:
        with _locked(journal.parent):
            finish_commit(journal)
            for final in finals:
                _sweep(final)
            for final in finals:
                held.append(_new_stage(final))
        try:
            yield [stage for stage, _ in held]
        except BaseException:
            for stage, _ in held:
                shutil.rmtree(stage, ignore_errors=True)
            raise
        with _locked(journal.parent):
            if len(finals) > 1:
                entries = [
                    {
                        "final": os.path.relpath(final, journal.parent),
                        "stage": os.path.relpath(stage, journal.parent),
                        "inode": os.stat(stage).st_ino,
                    }
                    for final, (stage, _) in zip(finals, held, strict=True)
                ]
                atomic_write_bytes(journal, json.dumps({"swaps": entries}, indent=1).encode())
            previous = [_swap_in(stage, final) for final, (stage, _) in zip(finals, held, strict=True)]
            journal.unlink(missing_ok=True)
            for old in previous:
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
    finally:
        for _, fd in held:
            os.close(fd)


def commit_journal(first_final: Path) -> Path:
    """Where staged_dirs records a multi-folder commit in progress."""
    return Path(first_final).parent / f".{Path(first_final).name}.commit.json"


def finish_commit(journal: Path) -> None:
    """Complete the swaps of a commit whose run was killed after deciding it (its journal exists)."""
    journal = Path(journal)
    for tmp in journal.parent.glob(f".{glob.escape(journal.name)}.*"):  # a journal killed while written
        tmp.unlink(missing_ok=True)
    if not journal.exists():
        return
    for entry in json.loads(journal.read_text(encoding="utf-8"))["swaps"]:
        final, stage = journal.parent / entry["final"], journal.parent / entry["stage"]
        if _inode(final) == entry["inode"]:  # swapped; what lies at the stage name is the previous folder
            shutil.rmtree(stage, ignore_errors=True)
        elif _inode(stage) == entry["inode"]:
            old = _swap_in(stage, final)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    journal.unlink()


def exchange_paths(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step; False where the system cannot (then nothing moved)."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


@functools.cache
def _renameat2():
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not Linux, or a libc older than glibc 2.28
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _swap_in(stage: Path, final: Path) -> Path | None:
    """Put `stage` at `final`; returns where the previous folder now lies (to delete), if any."""
    if not os.path.lexists(final):
        os.rename(stage, final)
        return None
    if exchange_paths(stage, final):
        return stage
    # No atomic exchange here: two renames, with a moment where `final` is absent.
    old = final.with_name(f".{final.name}.{OLD_MARK}{os.urandom(4).hex()}")
    os.replace(final, old)
    os.replace(stage, final)
    return old


def _new_stage(final: Path) -> tuple[Path, int]:
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.{STAGE_MARK}", dir=final.parent))
    stage.chmod(0o755)
    fd = os.open(stage, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # released by the kernel when this process dies, however it dies
    return stage, fd


def _sweep(final: Path) -> None:
    """Delete the stages and previous folders that dead runs left beside `final` (live ones are locked)."""
    for mark in (STAGE_MARK, OLD_MARK):
        for left in final.parent.glob(f".{glob.escape(final.name)}.{mark}*"):
            remove_unless_locked(left)


def remove_unless_locked(folder: Path) -> bool:
    """Delete a folder that a dead process left, unless a live one holds its flock; True if deleted."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # a live run is using it
    else:
        shutil.rmtree(folder, ignore_errors=True)
        return True
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """Make the entries of `folder` (a rename into it, a new file) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Serialise commits, recovery and sweeping in one folder between processes."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None
