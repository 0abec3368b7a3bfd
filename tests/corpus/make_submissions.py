"""Writes tests/corpus/submissions/: a tiny release (`_release/`) and one folder per hostile
submission, each with the files a team would send and `expect.json` (the team and names used,
and the message fragments the refusal must contain).

    .venv/bin/python tests/corpus/make_submissions.py

The output is committed; rerunning this script rewrites it identically.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent / "submissions"
CLASSES = ["lamp", "mug", "vase"]
IDS = [f"s{i:02d}" for i in range(1, 13)]
TRUTH = ["lamp", "mug", "vase", "mug", "mug", "lamp", "vase", "vase", "mug", "lamp", "mug", "vase"]
PAIRS = [f"p{i:02d}" for i in range(1, 11)]
MATCH = [1, 0, 0, 1, 0, 1, 0, 0, 1, 0]


def release() -> None:
    root = HERE / "_release"
    shutil.rmtree(root, ignore_errors=True)
    pub, priv = root / "public", root / "private"
    for task, card in (
        (
            "shop_kind",
            {
                "type": "classification",
                "track": "classification",
                "primary_metric": "macro_f1",
                "title": "Shop items into kinds",
                "classes": {"classes": CLASSES},
            },
        ),
        (
            "same_item",
            {
                "type": "matching",
                "track": "matching",
                "primary_metric": "f1",
                "title": "Same item in two shops",
                "classes": {"classes": [0, 1]},
            },
        ),
    ):
        (pub / task).mkdir(parents=True)
        (priv / task).mkdir(parents=True)
        (pub / task / "card.json").write_text(
            json.dumps({"task_id": task, "features": {"title": "text"}, **card}, indent=2, sort_keys=True) + "\n"
        )
    split = ["public" if i % 2 == 0 else "private" for i in range(12)]
    pq.write_table(pa.table({"id": IDS, "title": [f"item {i}" for i in IDS]}), pub / "shop_kind" / "test.parquet")
    pq.write_table(pa.table({"id": IDS, "label": TRUTH, "split": split}), priv / "shop_kind" / "test_labels.parquet")
    pq.write_table(
        pa.table({"pair_id": PAIRS, "left_id": [f"L{i}" for i in range(10)], "right_id": [f"R{i}" for i in range(10)]}),
        pub / "same_item" / "test_pairs.parquet",
    )
    pq.write_table(
        pa.table({"pair_id": PAIRS, "label": pa.array(MATCH, pa.int8()), "split": split[:10]}),
        priv / "same_item" / "test_labels.parquet",
    )


def good_rows(n: int = 12) -> list[str]:
    return [f"{i},{label}" for i, label in zip(IDS[:n], TRUTH)]


CASES: dict[str, dict] = {}


def case(case_name: str, files: dict[str, bytes | pa.Table], messages: list[str], **expect) -> None:
    CASES[case_name] = {"files": files, "expect": {"team": "hostile", "messages": messages} | expect}


def csv_bytes(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


def big(prefix: str, fill: str, size: int, suffix: str = "") -> dict:
    """A file too large to commit, written by the test from this recipe: prefix, `fill` repeated to
    `size` bytes, suffix."""
    return {"prefix": prefix, "fill": fill, "bytes": size, "suffix": suffix}


def repeated_rows_parquet(path: Path, rows: int) -> None:
    """40 million copies of one row in a few hundred KB: dictionary-encoded, run-length packed."""
    chunk = pa.table({"id": pa.array(["s01"] * 1_000_000).dictionary_encode(), "label": ["lamp"] * 1_000_000})
    with pq.ParquetWriter(path, chunk.schema, compression="zstd") as writer:
        for _ in range(rows // chunk.num_rows):
            writer.write_table(chunk, row_group_size=10_000_000)


def build_cases() -> None:
    case(
        "bad_columns",
        {"shop_kind.csv": csv_bytes(["ident,klass"] + good_rows())},
        ["needs ['id', 'label']", "Fix: write the header id,label"],
    )
    case("header_case", {"shop_kind.csv": csv_bytes(["ID,Label"] + good_rows())}, ["differ only in case or spaces"])
    case(
        "extra_column",
        {"shop_kind.csv": csv_bytes(["id,label,confidence"] + [r + ",0.5" for r in good_rows()])},
        ["unexpected column(s) ['confidence']", "keep only id,label"],
    )
    case(
        "unknown_ids",
        {"shop_kind.csv": csv_bytes(["id,label"] + good_rows() + ["s99,mug"])},
        ["column 'id': line 14: id not in the test set (1 row) (found 's99')"],
    )
    case(
        "padded_ids",
        {"shop_kind.csv": csv_bytes(["id,label", " s01,lamp"] + good_rows()[1:])},
        ["id not in the test set (1 row) (found ' s01')", "no prediction for 1 of the 12 test id values (found 's01')"],
    )
    case(
        "duplicate_ids",
        {"shop_kind.csv": csv_bytes(["id,label"] + good_rows() + ["s03,vase"])},
        ["column 'id': line 14: id given more than once (1 repeated row) (found 's03')"],
    )
    case(
        "duplicate_ids_parquet",
        {"shop_kind.parquet": pa.table({"id": IDS + ["s05"], "label": TRUTH + ["mug"]})},
        ["shop_kind.parquet: column 'id': row 13: id given more than once"],
    )
    case(
        "missing_ids",
        {"shop_kind.csv": csv_bytes(["id,label"] + good_rows(10))},
        ["no prediction for 2 of the 12 test id values (found 's11', 's12')", "add one row for every id of test.csv"],
    )
    case("header_only", {"shop_kind.csv": csv_bytes(["id,label"])}, ["no prediction for 12 of the 12 test id values"])
    case("empty_file", {"shop_kind.csv": b""}, ["the file is empty", "start with the header line id,label"])
    case(
        "label_not_a_class",
        {"shop_kind.csv": csv_bytes(["id,label"] + good_rows()[:4] + ["s05,lamps"] + good_rows()[5:])},
        ["column 'label': line 6: label is not a class of this task (1 row) (found 'lamps')", "card.json 'classes'"],
    )
    case(
        "empty_label",
        {"shop_kind.csv": csv_bytes(["id,label"] + good_rows()[:2] + ["s03,"] + good_rows()[3:])},
        ["line 4: label is not a class of this task (1 row) (found '')"],
    )
    case(
        "match_label_not_binary",
        {
            "same_item.csv": csv_bytes(
                ["pair_id,label"]
                + [f"{p},{'yes' if i == 0 else ('2' if i == 1 else m)}" for i, (p, m) in enumerate(zip(PAIRS, MATCH))]
            )
        },
        ["column 'label': lines 2, 3: label is not 0 or 1 (2 rows) (found 'yes', '2')"],
    )
    scores = ["0.9", "1.5", "-0.1", "abc", "nan", "", "0.2", "0.3", "1", "0"]
    case(
        "score_out_of_range",
        {
            "same_item.csv": csv_bytes(
                ["pair_id,label,score"] + [f"{p},{m},{s}" for p, m, s in zip(PAIRS, MATCH, scores)]
            )
        },
        [
            "column 'score': lines 3, 4, 5, 6, 7: score is not a number in [0, 1] (5 rows) (found '1.5', '-0.1', 'abc', 'nan', '')"
        ],
    )
    case(
        "match_label_float_parquet",
        {"same_item.parquet": pa.table({"pair_id": PAIRS, "label": [float(m) for m in MATCH]})},
        ["labels have type double; matching labels are the integers 0 and 1"],
    )
    latin = csv_bytes(["id,label"] + good_rows()[:3]) + "s04,caf\u00e9\n".encode("latin-1") + csv_bytes(good_rows()[4:])
    case(
        "not_utf8", {"shop_kind.csv": latin}, ["shop_kind.csv: line 5: the file is not UTF-8 text", "save it as UTF-8"]
    )
    case(
        "oversize",
        {"shop_kind.csv": csv_bytes(["id,label"] + good_rows() * 30)},
        ["larger than the cap of 0.001 MB", "the file was not kept"],
        max_file_mb=0.001,
    )
    case(
        "ragged_rows",
        {"shop_kind.csv": csv_bytes(["id,label"] + good_rows()[:4] + ["s05,mug,extra", "", "s06"] + good_rows()[6:])},
        [
            "lines 6, 8: wrong number of fields: 1, 3 instead of 2 (2 lines)",
            "no prediction for 2 of the 12 test id values (found 's05', 's06')",
        ],
    )
    case(
        "quoted_newline",
        {"shop_kind.csv": csv_bytes(["id,label"] + good_rows()[:2] + ['s03,"va', 'se"'] + good_rows()[3:])},
        ["shop_kind.csv: line 4: a quoted value runs over the end of the line"],
    )
    case(
        "unmatched_quote",
        {"shop_kind.csv": csv_bytes(["id,label"] + good_rows()[:5] + ['s06,"lamp'] + good_rows()[6:])},
        ["shop_kind.csv: line 7: a quoted value runs over the end of the line", "check for an unmatched quote"],
    )
    case("not_parquet", {"shop_kind.parquet": csv_bytes(["id,label"] + good_rows())}, ["not a readable Parquet file"])
    case(
        "unknown_task_file",
        {"predictions.csv": csv_bytes(["id,label"] + good_rows())},
        ["predictions.csv: the file name does not name a task of the challenge", "shop_kind"],
    )
    case(
        "wrong_case_name",
        {"Shop_Kind.CSV": csv_bytes(["id,label"] + good_rows())},
        ["Shop_Kind.CSV: the file name is not exactly a task name and format", "rename it to shop_kind.csv"],
    )
    case(
        "two_files_one_task",
        {
            "shop_kind.csv": csv_bytes(["id,label"] + good_rows()),
            "shop_kind.parquet": pa.table({"id": IDS, "label": TRUTH}),
        },
        ["2 files for one task: shop_kind.csv, shop_kind.parquet"],
    )
    good = {"shop_kind.csv": csv_bytes(["id,label"] + good_rows())}
    case(
        "path_trick_team",
        good,
        ["the team name would name a path outside its folder", "'../../etc'"],
        team="../../etc",
        raises=True,
    )
    case(
        "control_chars_team",
        good,
        ["the team name contains control or invisible characters", "\\x1b"],
        team="red\u001b[31mteam",
        raises=True,
    )
    case("bidi_team", good, ["control or invisible characters"], team="team\u202eevil", raises=True)
    case(
        "html_in_name",
        good,
        ["the submission name contains markup characters", "<script>"],
        name="<script>alert(1)</script>",
        raises=True,
    )
    case(
        "reserved_baseline_team",
        good,
        ["reserved for the organisers' baselines"],
        team="baseline-catboost",
        raises=True,
    )
    case("upper_case_team", good, ["the team name is not a slug", "e.g. 'my-team-1'"], team="My Team 1", raises=True)
    case(
        "description_with_newline",
        good,
        ["the description contains control or invisible characters"],
        description="line one\nline two",
        raises=True,
    )


def bomb_cases() -> None:
    """Small files that cost a lot to read: refused from the footer or within the line cap."""
    case(
        "parquet_row_bomb",
        {"shop_kind.parquet": ("repeated_rows", 40_000_000)},
        [
            "shop_kind.parquet: the file has 40,000,000 rows (from the file's footer; no row was read), "
            "the test set 12 id values",
            "Fix: give exactly one row per id of test.csv",
        ],
    )
    case(
        "csv_huge_field",
        {"shop_kind.csv": big("id,label\ns01,", "a", 20 * 1024 * 1024, "\n" + "\n".join(good_rows()[1:]) + "\n")},
        [
            "shop_kind.csv: line 2: the line is longer than 1 MB (reading stopped there)",
            "check for a missing line break or a runaway value",
        ],
    )
    case(
        "csv_huge_header",
        {"shop_kind.csv": big("id,label", ",x", 2 * 1024 * 1024, "\n" + "\n".join(good_rows()) + "\n")},
        ["shop_kind.csv: line 1: the line is longer than 1 MB (reading stopped there)"],
    )
    case(
        "csv_row_flood",
        {"shop_kind.csv": csv_bytes(["id,label"] + ["s01,lamp"] * 5000)},
        [
            "shop_kind.csv: the file has more than 112 rows (reading stopped at data row 5,000), the test set 12 id values"
        ],
    )
    wide = "a" * (6 * 1024 * 1024)
    case(
        "parquet_unpack_bomb",
        {"shop_kind.parquet": ("zstd", pa.table({"id": IDS, "label": [wide + str(i) for i in range(12)]}))},
        [
            "shop_kind.parquet: the data unpacks to 72.0 MB, more than the cap of 50 MB (from the file's footer; no row was read)"
        ],
    )


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def xlsx_like() -> bytes:
    """A zip archive like the one Excel writes (an .xlsx saved under a .csv name): fixed dates, so reruns match."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for member, text in (("[Content_Types].xml", "<Types/>"), ("xl/worksheets/sheet1.xml", "<worksheet/>")):
            z.writestr(zipfile.ZipInfo(member, date_time=(2026, 1, 1, 0, 0, 0)), text)
    return out.getvalue()


def match_rows(labels: list[str] | None = None) -> list[str]:
    return [f"{p},{m}" for p, m in zip(PAIRS, labels or [str(m) for m in MATCH])]


def more_cases() -> None:
    """Accidents of real teams (encodings, spreadsheets, pandas, zips, renamed files) and more hostile names."""
    good_csv = csv_bytes(["id,label"] + good_rows())
    rows = good_rows()
    # --- bytes that are not UTF-8 CSV text, under a .csv name
    case(
        "utf16_file",
        {"shop_kind.csv": "\n".join(["id,label"] + rows).encode("utf-16")},
        ["shop_kind.csv: the file is UTF-16 text, not UTF-8 CSV text", "save it as UTF-8"],
    )
    case(
        "gzip_named_csv",
        {"shop_kind.csv": gzip.compress(good_csv, mtime=0)},
        ["shop_kind.csv: the file is gzip-compressed data, not UTF-8 CSV text", "decompress it (gunzip)"],
    )
    case(
        "xlsx_named_csv",
        {"shop_kind.csv": xlsx_like()},
        [
            "shop_kind.csv: the file is a zip archive (an Excel .xlsx workbook is one), not UTF-8 CSV text",
            "from Excel, use Save As 'CSV UTF-8'",
        ],
    )
    case(
        "parquet_named_csv",
        {"shop_kind.csv": parquet_bytes(pa.table({"id": IDS, "label": TRUTH}))},
        ["shop_kind.csv: the file is Parquet data under a .csv name. Fix: rename it to shop_kind.parquet"],
    )
    case(
        "cr_only_line_ends",
        {"shop_kind.csv": "\r".join(["id,label"] + rows).encode() + b"\r"},
        [
            "shop_kind.csv: line 1: the lines end with a carriage return only (CR, the line end of old Mac files)",
            "save it with LF or CRLF line ends",
        ],
    )
    # --- CSV dialects, spreadsheet and pandas habits
    case(
        "semicolon_delimited",
        {"shop_kind.csv": csv_bytes(["id;label"] + [r.replace(",", ";") for r in rows])},
        [
            "the file has the columns ['id;label'] but needs ['id', 'label'] (the values are separated by semicolons, not commas)",
            "separate the values with commas",
        ],
    )
    case(
        "header_trailing_comma",
        {"shop_kind.csv": csv_bytes(["id,label,"] + [r + "," for r in rows])},
        ["shop_kind.csv: column 3 of the header has no name", "drop the trailing comma at the end of each line"],
    )
    case(
        "pandas_index_column",
        {"shop_kind.csv": csv_bytes([",id,label"] + [f"{i},{r}" for i, r in enumerate(rows)])},
        ["shop_kind.csv: column 1 of the header has no name", "(pandas: to_csv(..., index=False))"],
    )
    case(
        "comment_line",
        {"shop_kind.csv": csv_bytes(["# predictions v2, model xgb", "id,label"] + rows)},
        ["(line 1 is a comment)", "make the header id,label the first line; comment lines are not allowed"],
    )
    case(
        "header_repeated_mid_file",
        {"shop_kind.csv": csv_bytes(["id,label"] + rows[:6] + ["id,label"] + rows[6:])},
        [
            "column 'id': line 8: id not in the test set (1 row) (found 'id')",
            "a row repeats the header: were two files joined?",
        ],
    )
    # --- values that look right and are not
    case(
        "nul_byte_in_label",
        {"shop_kind.csv": csv_bytes(["id,label"] + rows[:2] + ["s03,va\x00se"] + rows[3:])},
        ["column 'label': line 4: label is not a class of this task (1 row) (found 'va\\x00se')"],
    )
    case(
        "escape_codes_in_labels",
        {"shop_kind.csv": csv_bytes(["id,label"] + rows[:2] + ["s03,\x1b[31mvase\x1b[0m", "s04,\u202egum"] + rows[4:])},
        ["lines 4, 5: label is not a class of this task (2 rows) (found '\\x1b[31mvase\\x1b[0m', '\\u202egum')"],
    )
    case(
        "label_case_or_spaces",
        {"shop_kind.csv": csv_bytes(["id,label"] + rows[:2] + ["s03,vase ", "s04,Mug"] + rows[4:])},
        [
            "lines 4, 5: label is not a class of this task (2 rows) (found 'vase ', 'Mug')",
            "'vase ', 'Mug' differ from a class only in case or spaces",
        ],
    )
    case(
        "label_as_class_index",
        {"shop_kind.csv": csv_bytes(["id,label"] + [f"{i},{CLASSES.index(t)}" for i, t in zip(IDS, TRUTH)])},
        [
            "column 'label': lines 2, 3, 4, 5, 6 and 7 more: label is not a class of this task (12 rows) "
            "(found '0', '1', '2', '1', '1')",
            "(3 classes: 'lamp', 'mug', 'vase'); write the class names, not their numbers",
        ],
    )
    # --- Parquet
    case(
        "parquet_pandas_index",
        {"shop_kind.parquet": pa.table({"id": IDS, "label": TRUTH, "__index_level_0__": list(range(12))})},
        ["unexpected column(s) ['__index_level_0__']", "'__index_level_0__' is a pandas index: write with index=False"],
    )
    case(
        "parquet_nulls",
        {"shop_kind.parquet": pa.table({"id": IDS[:11] + [None], "label": TRUTH[:3] + [None] + TRUTH[4:]})},
        [
            "shop_kind.parquet: column 'id': row 12: id not in the test set (1 row) (found None)",
            "shop_kind.parquet: column 'label': row 4: label is not a class of this task (1 row) (found None)",
            "no prediction for 1 of the 12 test id values (found 's12')",
        ],
    )
    case(
        "parquet_empty_file",
        {"shop_kind.parquet": b""},
        ["shop_kind.parquet: the file is empty. Fix: write it again with pandas.DataFrame.to_parquet or pyarrow"],
    )
    case(
        "parquet_truncated",
        {"shop_kind.parquet": parquet_bytes(pa.table({"id": IDS, "label": TRUTH}))[:-40]},
        [
            "shop_kind.parquet: not a readable Parquet file: it is cut short (its footer is missing)",
            "the write or the upload did not finish",
        ],
    )
    case(
        "parquet_duplicate_columns",
        {
            "shop_kind.parquet": pa.Table.from_arrays(
                [pa.array(IDS), pa.array(TRUTH), pa.array(TRUTH)], ["id", "label", "label"]
            )
        },
        ["shop_kind.parquet: column 'label': the header names ['label'] more than once"],
    )
    case(
        "parquet_list_label",
        {"shop_kind.parquet": pa.table({"id": IDS, "label": [[t] for t in TRUTH]})},
        ["column 'label': labels have type list<element: string>; classes are text"],
    )
    case(
        "match_score_string_parquet",
        {"same_item.parquet": pa.table({"pair_id": PAIRS, "label": MATCH, "score": ["0.5"] * 10})},
        ["same_item.parquet: column 'score': scores have type string", "write scores as floating-point numbers"],
    )
    # --- matching CSV
    case(
        "match_label_float_or_bool_text",
        {"same_item.csv": csv_bytes(["pair_id,label"] + match_rows(["1.0", "false"] + [str(m) for m in MATCH[2:]]))},
        ["column 'label': lines 2, 3: label is not 0 or 1 (2 rows) (found '1.0', 'false')", "write 1 for a match"],
    )
    case(
        "match_score_without_label",
        {"same_item.csv": csv_bytes(["pair_id,score"] + match_rows())},
        ["the file has the columns ['pair_id', 'score'] but needs ['pair_id', 'label']", "pair_id,label[,score]"],
    )
    # --- the folder and its file names
    case(
        "subfolder",
        {"my_preds/shop_kind.csv": good_csv},
        ["my_preds: the entry is a sub-folder; its files were not read", "zip the files, not their folder"],
    )
    case(
        "gzip_file_name",
        {"shop_kind.csv.gz": gzip.compress(good_csv, mtime=0)},
        ["shop_kind.csv.gz: the file is compressed (.gz)", "decompress it and submit shop_kind.csv itself"],
    )
    case(
        "txt_file_name",
        {"shop_kind.txt": good_csv},
        ["shop_kind.txt: the file name is not exactly a task name and format", "submit it as shop_kind.csv"],
    )
    case(
        "browser_copy_name",
        {"shop_kind (1).csv": good_csv},
        ["shop_kind (1).csv: the file name is not exactly a task name and format", "rename it to shop_kind.csv"],
    )
    case(
        "hidden_file_beside_good",
        {"shop_kind.csv": good_csv, ".DS_Store": b"\x00\x00\x00\x01Bud1"},
        [".DS_Store: a hidden file is not a task file; the file was not kept", "delete hidden files from the folder"],
    )
    # --- names
    good = {"shop_kind.csv": good_csv}
    case("empty_team", good, ["the team name is empty", "e.g. 'my-team'"], team="", raises=True)
    case(
        "long_team",
        good,
        ["the team name has 200 characters, more than 40", "use 1 to 40 lower-case letters"],
        team="team-" + "x" * 195,
        raises=True,
    )
    case(
        "homoglyph_team",
        good,
        ["the team name has characters outside plain ASCII: U+0435 CYRILLIC SMALL LETTER IE at position 2"],
        team="t\u0435am-red",  # a Cyrillic 'е': looks like 'team-red'
        raises=True,
    )
    case("rejected_dir_team", good, ["the team name is not a slug", "e.g. 'rejected'"], team="_rejected", raises=True)
    case(
        "long_description",
        good,
        ["the description has 600 characters, more than 500", "shorten it to 500 characters or fewer"],
        description="tuned " * 100,
        raises=True,
    )


def main() -> None:
    release()
    build_cases()
    bomb_cases()
    more_cases()
    for name in [p.name for p in HERE.iterdir() if p.is_dir() and not p.name.startswith("_")]:
        shutil.rmtree(HERE / name)
    for name, spec in CASES.items():
        folder = HERE / name
        (folder / "files").mkdir(parents=True)
        for fname, content in spec["files"].items():
            target = folder / "files" / fname
            target.parent.mkdir(exist_ok=True)  # a case may hold a sub-folder
            if isinstance(content, pa.Table):
                pq.write_table(content, target)
            elif isinstance(content, tuple) and content[0] == "repeated_rows":
                repeated_rows_parquet(target, content[1])
            elif isinstance(content, tuple) and content[0] == "zstd":
                pq.write_table(content[1], target, compression="zstd", use_dictionary=False)
            elif isinstance(content, dict):  # written by the test (too large to commit)
                spec["expect"].setdefault("big", {})[fname] = content
            else:
                target.write_bytes(content)
        (folder / "expect.json").write_text(
            json.dumps(spec["expect"], indent=2, sort_keys=True, ensure_ascii=True) + "\n"
        )
    print(f"{len(CASES)} hostile submissions written to {HERE}")


if __name__ == "__main__":
    main()
