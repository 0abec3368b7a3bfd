"""Receiving an upload: streamed to a staging folder under the portal's data path, capped while
it streams, zips opened with every path checked; then handed to submit(), the one way in.

The per-file cap is submit's own (`submit.max_file_mb`). A file that passes it is cut one
byte past the cap and still handed to submit(), which refuses it with its own message and
records the rejection, so the team sees it in its history like any other. A request larger
than every file at the cap together is refused (413) before, or as soon as, it gets there.
"""

from __future__ import annotations

import re
import shutil
import stat
import uuid
import zipfile
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header

from tasks.submissions.validate import MB

FIELD_LIMIT = 64 * 1024  # a text field (name, description, csrf)
CHUNK = 1 << 20
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")
ZIP_SUFFIX = ".zip"


class UploadRefused(Exception):
    """The upload is refused whole and nothing is stored (HTTP status and a message with the fix)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Received:
    folder: Path  # holds the task files, flat
    fields: dict[str, str] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)  # the file names as uploaded (a zip: its name)


def safe_name(name: str, where: str) -> str:
    """A client's file name becomes a file in the staging folder: a plain base name or nothing."""
    if not SAFE_NAME.match(name or "") or ".." in name:
        shown = repr(name)[1:-1][:80]
        raise UploadRefused(
            400,
            f"{where} '{shown}' is not a plain file name; nothing was stored. Fix: name files "
            "<task>.csv or <task>.parquet (letters, digits, dots, hyphens and underscores, no folders)",
        )
    return name


class _Parts:
    """Callbacks of the streaming multipart parser: fields in memory (bounded), files to disk (capped)."""

    def __init__(self, stage: Path, cap: int, max_files: int):
        self.stage, self.cap, self.max_files = stage, cap, max_files
        self.fields: dict[str, str] = {}
        self.files: list[tuple[str, Path]] = []
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._value = bytearray()
        self._out: BinaryIO | None = None
        self._written = 0
        self.error: UploadRefused | None = None

    def callbacks(self) -> Any:  # python-multipart's MultipartCallbacks (a TypedDict)
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._header_field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._part_end,
        }

    def _fail(self, status: int, message: str) -> None:
        if self.error is None:
            self.error = UploadRefused(status, message)

    def _part_begin(self) -> None:
        self._headers, self._name, self._value, self._out, self._written = {}, None, bytearray(), None, 0

    def _header_end(self) -> None:
        self._headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = params.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" not in params:
            return
        filename = params[b"filename"].decode("utf-8", "replace")
        if not filename:  # an empty file input
            self._name = None
            return
        if len(self.files) >= self.max_files:
            self._fail(413, f"more than {self.max_files} files in one upload. Fix: send at most {self.max_files}")
            return
        try:
            name = safe_name(filename, "the file name")
        except UploadRefused as exc:
            self._fail(exc.status, exc.message)
            return
        if any(n == name for n, _ in self.files):
            self._fail(400, f"two files named '{name}' in one upload. Fix: send each task file once")
            return
        path = self.stage / "received" / uuid.uuid4().hex / name
        path.parent.mkdir(parents=True)
        self._out = open(path, "xb")  # noqa: SIM115 (written part by part, closed at the part end)
        self.files.append((name, path))

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.error is not None or self._name is None:
            return
        if self._out is None:
            if len(self._value) + end - start > FIELD_LIMIT:
                self._fail(413, f"the form field '{self._name[:40]}' is longer than {FIELD_LIMIT} bytes")
                return
            self._value.extend(data[start:end])
            return
        room = self.cap + 1 - self._written  # one byte past the cap: submit() sees it is too large
        if room > 0:
            piece = data[start : min(end, start + room)]
            self._out.write(piece)
            self._written += len(piece)

    def _part_end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        elif self._name is not None and self.error is None:
            self.fields[self._name] = self._value.decode("utf-8", "replace")

    def close(self) -> None:
        if self._out is not None:
            self._out.close()


async def receive(
    content_type: str | None,
    content_length: str | None,
    body: AsyncIterator[bytes],
    stage: Path,
    cap_mb: float,
    max_files: int,
) -> Received:
    """Stream a multipart/form-data body into `stage`; refuse (UploadRefused) what cannot be a submission."""
    kind, params = parse_options_header(content_type or "")
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise UploadRefused(415, "send the files as multipart/form-data (an HTML form, or curl -F file=@path)")
    cap = int(cap_mb * MB)
    limit = max_files * (cap + 1) + 1 * MB  # every file at the cap, plus the form's fields
    if content_length and content_length.isdigit() and int(content_length) > limit:
        raise UploadRefused(
            413, f"the upload is larger than {limit // MB} MB, the most {max_files} files at the cap can take"
        )
    parts = _Parts(stage, cap, max_files)
    parser = MultipartParser(params[b"boundary"], parts.callbacks())
    total = 0
    try:
        async for chunk in body:
            total += len(chunk)
            if total > limit:
                raise UploadRefused(413, f"the upload is larger than {limit // MB} MB; reading stopped there")
            if parts.error is None:
                parser.write(chunk)
        parser.finalize()
    except UploadRefused:
        raise
    except Exception as exc:  # a malformed body: the parser's own words
        raise UploadRefused(400, f"the upload is not well-formed multipart data ({exc})") from None
    finally:
        parts.close()
    if parts.error is not None:
        raise parts.error
    if not parts.files:
        raise UploadRefused(400, "the upload holds no file. Fix: choose one task file per task, or a zip of them")
    folder = stage / "files"
    folder.mkdir()
    names = []
    for name, path in parts.files:
        names.append(name)
        if name.lower().endswith(ZIP_SUFFIX):
            extract_zip(path, folder, cap, max_files)
        else:
            if (folder / name).exists():
                raise UploadRefused(400, f"'{name}' is both uploaded and inside a zip. Fix: send it once")
            shutil.move(path, folder / name)
    return Received(folder, parts.fields, names)


def _archiver_metadata(member: str) -> bool:
    """A member the archiver wrote, not the team: macOS resource forks and folder settings."""
    parts = PurePosixPath(member).parts
    return bool(parts) and (parts[0] == "__MACOSX" or parts[-1] == ".DS_Store" or parts[-1].startswith("._"))


def extract_zip(archive: Path, folder: Path, cap: int, max_files: int) -> list[str]:
    """Members of a zip into `folder`, flat. Refused whole: a path that escapes (absolute, '..',
    a drive, backslashes), a link, nested folders; each member is cut one byte past the cap. What
    the archiver adds on its own (macOS Finder's `__MACOSX/`, `._*` and `.DS_Store`) is left out."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UploadRefused(400, f"{archive.name} is not a readable zip file ({exc})") from None
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir() and not _archiver_metadata(m.filename)]
        for m in zf.infolist():
            p = m.filename
            parts = PurePosixPath(p).parts
            if p.startswith(("/", "\\")) or "\\" in p or ".." in parts or (parts and ":" in parts[0]) or "\0" in p:
                raise UploadRefused(
                    400,
                    f"{archive.name}: the member '{repr(p)[1:-1][:80]}' names a path outside the archive; "
                    "nothing was stored. Fix: zip the task files themselves, with relative names",
                )
            if stat.S_ISLNK(m.external_attr >> 16):
                raise UploadRefused(
                    400, f"{archive.name}: the member '{p[:80]}' is a link. Fix: zip the files themselves"
                )
        if len(members) > max_files:
            raise UploadRefused(413, f"{archive.name} holds {len(members)} files, more than {max_files}")
        tops = {PurePosixPath(m.filename).parts[0] for m in members if len(PurePosixPath(m.filename).parts) > 1}
        nested = [m.filename for m in members if len(PurePosixPath(m.filename).parts) > 2]
        if (
            nested
            or (tops and len(tops) > 1)
            or (tops and any(len(PurePosixPath(m.filename).parts) == 1 for m in members))
        ):
            raise UploadRefused(
                400,
                f"{archive.name}: files in several folders; a submission is flat. Fix: zip the task files, or one folder of them",
            )
        written = []
        for m in members:
            name = safe_name(PurePosixPath(m.filename).name, f"{archive.name}: the member")
            dest = folder / name
            if dest.exists():
                raise UploadRefused(400, f"{archive.name}: '{name}' appears twice. Fix: one file per task")
            try:
                with zf.open(m) as src, open(dest, "xb") as out:
                    left = cap + 1
                    while left > 0 and (block := src.read(min(CHUNK, left))):
                        out.write(block)
                        left -= len(block)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
                raise UploadRefused(400, f"{archive.name}: the member '{name}' cannot be read ({exc})") from None
            written.append(name)
    return written
