"""Receiving uploads: streamed with the cap, names checked, zips opened with every path checked."""

from __future__ import annotations

import asyncio
import io
import zipfile

import pytest

from tasks.portal.uploads import UploadRefused, extract_zip, receive

BOUNDARY = "xYzBoundary"


def body(files: list[tuple[str, bytes]], fields: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    for k, v in (fields or {}).items():
        out.write(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    for name, data in files:
        out.write(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
        )
        out.write(data + b"\r\n")
    out.write(f"--{BOUNDARY}--\r\n".encode())
    return out.getvalue()


def run(data: bytes, stage, cap_mb=1.0, max_files=5, chunk=7, length: str | None = None):
    async def chunks():
        for i in range(0, len(data), chunk):
            yield data[i : i + chunk]

    stage.mkdir(parents=True, exist_ok=True)
    return asyncio.run(
        receive(
            f"multipart/form-data; boundary={BOUNDARY}", length or str(len(data)), chunks(), stage, cap_mb, max_files
        )
    )


def zipped(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_files_and_fields_arrive_in_a_flat_folder(tmp_path):
    got = run(
        body([("a.csv", b"id,label\n1,x\n"), ("b.parquet", b"PAR1")], {"name": "try-1", "description": "hi"}),
        tmp_path / "s",
    )
    assert got.fields == {"name": "try-1", "description": "hi"}
    assert sorted(p.name for p in got.folder.iterdir()) == ["a.csv", "b.parquet"]
    assert (got.folder / "a.csv").read_bytes() == b"id,label\n1,x\n"


def test_a_file_past_the_cap_is_cut_one_byte_past_it(tmp_path):
    cap = 1000 / (1 << 20)
    got = run(body([("a.csv", b"x" * 5000)]), tmp_path / "s", cap_mb=cap, chunk=333)
    assert (got.folder / "a.csv").stat().st_size == 1001  # submit() sees it is too large, and says so


def test_a_request_declaring_more_than_every_file_at_the_cap_is_refused_unread(tmp_path):
    with pytest.raises(UploadRefused) as exc:
        run(body([("a.csv", b"x")]), tmp_path / "s", cap_mb=0.001, max_files=2, length=str(50 << 20))
    assert exc.value.status == 413


def test_a_body_that_grows_past_the_limit_is_stopped_while_streaming(tmp_path):
    with pytest.raises(UploadRefused) as exc:
        run(body([("a.csv", b"x" * (3 << 20))]), tmp_path / "s", cap_mb=0.001, max_files=1, length="10", chunk=1 << 16)
    assert exc.value.status == 413


@pytest.mark.parametrize("name", ["../a.csv", "/etc/passwd", "a/b.csv", "..", ".hidden.csv", "a\\b.csv", "x" * 200])
def test_file_names_that_are_not_plain_are_refused(tmp_path, name):
    with pytest.raises(UploadRefused, match="not a plain file name"):
        run(body([(name, b"x")]), tmp_path / "s")
    assert not any(p.is_file() for p in (tmp_path.parent).rglob("passwd"))


def test_too_many_files_and_repeated_names_are_refused(tmp_path):
    with pytest.raises(UploadRefused, match="more than 2 files"):
        run(body([("a.csv", b"1"), ("b.csv", b"2"), ("c.csv", b"3")]), tmp_path / "s", max_files=2)
    with pytest.raises(UploadRefused, match="two files named"):
        run(body([("a.csv", b"1"), ("a.csv", b"2")]), tmp_path / "t")


def test_no_file_and_not_multipart_are_refused(tmp_path):
    with pytest.raises(UploadRefused, match="no file"):
        run(body([], {"name": "x"}), tmp_path / "s")

    async def empty():
        yield b""

    with pytest.raises(UploadRefused) as exc:
        asyncio.run(receive("application/json", "2", empty(), tmp_path, 1, 1))
    assert exc.value.status == 415


def test_a_zip_is_opened_flat_or_from_one_folder(tmp_path):
    got = run(body([("preds.zip", zipped({"a.csv": b"1", "b.csv": b"2"}))]), tmp_path / "s")
    assert sorted(p.name for p in got.folder.iterdir()) == ["a.csv", "b.csv"]
    got = run(body([("preds.zip", zipped({"mine/a.csv": b"1", "mine/b.csv": b"2"}))]), tmp_path / "t")
    assert sorted(p.name for p in got.folder.iterdir()) == ["a.csv", "b.csv"]


def test_a_zip_made_by_macos_finder_is_opened_without_its_metadata(tmp_path):
    """Finder's "Compress" adds __MACOSX/ (with ._ resource forks) and .DS_Store beside the files."""
    members = {
        "mine/a.csv": b"1",
        "mine/.DS_Store": b"\0\0\0\1Bud1",
        "__MACOSX/mine/._a.csv": b"\0\5\26\7",
        "__MACOSX/._mine": b"\0\5\26\7",
    }
    got = run(body([("preds.zip", zipped(members))]), tmp_path / "s")
    assert sorted(p.name for p in got.folder.iterdir()) == ["a.csv"]


@pytest.mark.parametrize("member", ["../evil.csv", "/abs.csv", "a/../../evil.csv", "C:/evil.csv", "dir\\..\\evil.csv"])
def test_a_zip_member_that_escapes_refuses_the_whole_upload(tmp_path, member):
    archive = tmp_path / "in.zip"
    archive.write_bytes(zipped({"a.csv": b"1", member: b"2"}))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UploadRefused, match="outside the archive"):
        extract_zip(archive, out, 100, 10)
    assert list(out.iterdir()) == [] and not (tmp_path / "evil.csv").exists()


def test_zip_links_nesting_bombs_and_garbage(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("a.csv")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UploadRefused, match="is a link"):
        extract_zip(link, out, 100, 10)
    nested = tmp_path / "nested.zip"
    nested.write_bytes(zipped({"a/b/c.csv": b"1"}))
    with pytest.raises(UploadRefused, match="several folders"):
        extract_zip(nested, out, 100, 10)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.csv", b"0" * (5 << 20))
    assert extract_zip(bomb, out, 1000, 10) == ["a.csv"]
    assert (out / "a.csv").stat().st_size == 1001  # cut while inflating
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(UploadRefused, match="not a readable zip"):
        extract_zip(garbage, out, 100, 10)
