"""Raw files of every supported format and encoding read into the same Arrow table."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.core.errors import InputError
from tasks.core.manifest import FileSpec
from tasks.ingest.rawfiles import read_raw

NA = ["", "NA"]
COLUMNS = {"id": "id", "name": "text", "price": "numeric"}


def spec(path: str, **kw) -> FileSpec:
    return FileSpec(path=path, columns=COLUMNS, **kw)


def read(tmp_path, name, **kw):
    return read_raw(tmp_path, "t", "data", spec(name, **kw), NA)


@pytest.mark.parametrize("encoding, bom", [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("latin-1", b"")])
def test_csv_encodings(tmp_path, encoding, bom):
    (tmp_path / "d.csv").write_bytes(bom + "id,name,price\n1,café,2.5\n2,NA,\n".encode(encoding))
    raw = read(tmp_path, "d.csv", encoding=encoding)
    assert raw.table.column_names == ["id", "name", "price"]
    assert raw.table.column("name").to_pylist() == ["café", None]
    assert raw.table.column("price").to_pylist() == ["2.5", None]  # parsed later, by role
    assert raw.row_numbers([0, 1]) == [2, 3] and raw.row_label == "line"


def test_csv_quoted_newlines_and_commas(tmp_path):
    (tmp_path / "d.csv").write_text('id,name,price\n1,"big, red\nmug",3\n')
    assert read(tmp_path, "d.csv").table.column("name").to_pylist() == ["big, red\nmug"]


def test_tsv_keeps_quotes_literally(tmp_path):
    (tmp_path / "d.tsv").write_text('id\tname\tprice\n1\t12" pizza\t9\n')
    assert read(tmp_path, "d.tsv").table.column("name").to_pylist() == ['12" pizza']


def test_jsonl_mixed_types_fall_back_to_text(tmp_path):
    lines = [{"id": 1, "name": 7, "price": 1.5}, {"id": 2, "name": "Sprite", "price": None}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    raw = read(tmp_path, "d.jsonl")
    assert raw.table.column("name").to_pylist() == ["7", "Sprite"]
    assert raw.table.column("price").to_pylist() == [1.5, None]


def test_jsonl_latin1(tmp_path):
    (tmp_path / "d.jsonl").write_bytes('{"id": 1, "name": "café", "price": 2}\n'.encode("latin-1"))
    assert read(tmp_path, "d.jsonl", encoding="latin-1").table.column("name").to_pylist() == ["café"]


def test_parquet(tmp_path):
    pq.write_table(pa.table({"id": [1, 2], "name": ["a", "b"], "price": [1.0, None]}), tmp_path / "d.parquet")
    raw = read(tmp_path, "d.parquet")
    assert raw.row_label == "row" and raw.table.num_rows == 2


def test_corrupt_parquet(tmp_path):
    (tmp_path / "d.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        read(tmp_path, "d.parquet")


def test_duplicate_header(tmp_path):
    (tmp_path / "d.csv").write_text("id,name,name,price\n1,a,b,2\n")
    with pytest.raises(InputError, match="several columns named"):
        read(tmp_path, "d.csv")
