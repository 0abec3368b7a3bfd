"""Writes tests/corpus/broken/: one small broken contribution per folder, with expect.json
listing what its refusal message must say. Run it again after changing a case:

    python tests/corpus/make_broken.py
"""

import io
import json
import shutil
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).parent / "broken"


def png(color: str) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(b, "PNG")
    return b.getvalue()


CLS_YAML = """id: {id}
type: classification
track: classification
primary_metric: macro_f1
title: Broken contribution ({id})
files:
  data:
    path: items.csv
    columns:
      Item ID: id
      Name: {{role: text, name: title}}
      Price: {{role: numeric, name: price}}
      Colour: categorical
      Photo: image
      Kind: label
"""
ROWS = [
    ("A1", "red mug", "12.5", "red", "img/a1.png", "mug"),
    ("A2", "blue vase", "30", "blue", "img/a2.png", "vase"),
    ("A3", "green mug", "9.90", "green", "img/a3.png", "mug"),
    ("A4", "tall vase", "41", "white", "img/a4.png", "vase"),
    ("A5", "small mug", "", "black", "img/a5.png", "mug"),
    ("A6", "glass vase", "25", "blue", "img/a6.png", "vase"),
]
HEADER = "Item ID,Name,Price,Colour,Photo,Kind"


def expect(d: Path, contains) -> None:
    (d / "expect.json").write_text(json.dumps({"contains": list(contains)}, indent=1) + "\n")


def cls_case(name, rows=ROWS, header=HEADER, yaml=None, raw=None, contains=()):
    d = ROOT / name
    (d / "img").mkdir(parents=True, exist_ok=True)
    (d / "task.yaml").write_text((yaml or CLS_YAML).format(id=name))
    if raw is not None:
        (d / "items.csv").write_bytes(raw)
    elif rows is not None:
        (d / "items.csv").write_text(header + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    for i, c in enumerate(["red", "blue", "green", "white", "black", "blue"]):
        (d / f"img/a{i + 1}.png").write_bytes(png(c))
    expect(d, contains)
    return d


MATCH_YAML = """id: {id}
type: matching
track: matching
primary_metric: f1
title: Broken contribution ({id})
files:
  left:
    path: left.csv
    columns: {{lid: id, name: text, city: categorical}}
  right:
    path: right.csv
    columns: {{rid: id, name: text, city: categorical}}
  pairs:
    path: pairs.csv
    columns: {{l: left_id, r: right_id, y: label}}
"""
GOOD_PAIRS = [("L1", "R1", "1"), ("L2", "R2", "1"), ("L3", "R3", "1"), ("L4", "R4", "0"), ("L4", "R1", "0")]


def match_case(name, pairs, yaml=None, contains=()):
    d = ROOT / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "task.yaml").write_text((yaml or MATCH_YAML).format(id=name))
    (d / "left.csv").write_text(
        "lid,name,city\nL1,ann smith,york\nL2,bob jones,leeds\nL3,cy young,hull\nL4,di brown,york\n"
    )
    (d / "right.csv").write_text(
        "rid,name,city\nR1,anne smith,york\nR2,bob jones,leeds\nR3,c young,hull\nR4,dan brown,york\n"
    )
    (d / "pairs.csv").write_text("l,r,y\n" + "\n".join(",".join(p) for p in pairs) + "\n")
    expect(d, contains)


def with_value(row, index, value):
    return row[:index] + (value,) + row[index + 1 :]


def main() -> None:
    shutil.rmtree(ROOT, ignore_errors=True)
    cls_case("missing_file", rows=None, contains=["missing_file", "items.csv", "file not found", "Fix: add items.csv"])
    cls_case(
        "column_absent",
        header=HEADER.replace("Colour", "Color"),
        contains=["items.csv", "column 'Colour'", "does not have", "Fix:"],
    )
    cls_case(
        "unknown_role",
        yaml=CLS_YAML.replace("Colour: categorical", "Colour: colour"),
        contains=["task.yaml", "column 'Colour'", "unknown role 'colour'", "Fix: use one of: id, label, text"],
    )
    cls_case(
        "no_label_column",
        yaml=CLS_YAML.replace("Kind: label", "Kind: categorical"),
        contains=["task.yaml", "no column has role 'label'", "Fix: mark the target column"],
    )
    cls_case(
        "two_label_columns",
        yaml=CLS_YAML.replace("Colour: categorical", "Colour: label"),
        contains=["task.yaml", "2 columns have role 'label'", "Fix: keep one label column"],
    )
    cls_case(
        "duplicate_ids",
        rows=ROWS[:3] + [with_value(ROWS[3], 0, "A2")] + ROWS[4:],
        contains=["items.csv", "column 'Item ID'", "lines 3, 5", "'A2'", "Fix: make ids unique"],
    )
    cls_case(
        "missing_image",
        rows=ROWS[:2] + [with_value(ROWS[2], 4, "img/nope.png")] + ROWS[3:],
        contains=[
            "items.csv",
            "column 'Photo'",
            "line 4",
            "img/nope.png: file not found",
            "Fix: add the missing image files",
        ],
    )
    d = cls_case("unreadable_image", contains=["items.csv", "column 'Photo'", "line 3", "not a readable image", "Fix:"])
    (d / "img/a2.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    cls_case(
        "unparseable_numeric",
        rows=ROWS[:1] + [with_value(ROWS[1], 2, '"12,5"')] + ROWS[2:4] + [with_value(ROWS[4], 2, "about 9")] + ROWS[5:],
        contains=["items.csv", "column 'Price'", "lines 3, 6", "'12,5'", "'about 9'", "not numbers", "Fix:"],
    )
    cls_case("empty_file", raw=b"", contains=["items.csv", "file is empty", "Fix:"])
    cls_case("header_only", raw=(HEADER + "\n").encode(), contains=["items.csv", "no data rows", "Fix:"])
    latin1 = (
        HEADER + "\n" + "\n".join(",".join(with_value(r, 1, "café vase") if r[0] == "A4" else r) for r in ROWS) + "\n"
    )
    cls_case(
        "undeclared_latin1",
        raw=latin1.encode("latin-1"),
        contains=["items.csv", "line 5", "not UTF-8", "Fix: declare `encoding: latin-1`"],
    )
    cls_case(
        "ragged_rows",
        rows=ROWS[:2] + [ROWS[2] + ("extra",)] + ROWS[3:5] + [ROWS[5][:4]],
        contains=["items.csv", "lines 4, 7", "different number of fields", "Fix: quote values"],
    )
    cls_case(
        "undeclared_column",
        header=HEADER + ",Notes",
        rows=[r + ("x",) for r in ROWS],
        contains=["items.csv", "column 'Notes'", "no role", "Fix: add them under files.data.columns"],
    )
    cls_case(
        "unmapped_label",
        yaml=CLS_YAML + "label_mapping: {{mug: Mug}}\n",
        contains=[
            "items.csv",
            "column 'Kind'",
            "['vase']",
            "not in label_mapping",
            "lines 3, 5, 7",
            "Fix: add them to label_mapping",
        ],
    )
    cls_case(
        "image_path_escapes",
        rows=ROWS[:1] + [with_value(ROWS[1], 4, "../../../etc/passwd")] + ROWS[2:],
        contains=["items.csv", "column 'Photo'", "line 3", "leaves the task folder"],
    )
    cls_case(
        "wrong_file_layout",
        yaml=CLS_YAML.replace("  data:", "  left:"),
        contains=["task.yaml", "do not fit a classification task", "Fix:"],
    )
    cls_case(
        "bad_snake_case_name",
        yaml=CLS_YAML.replace("name: title", "name: Title Text"),
        contains=["task.yaml", "column 'Name'", "not snake_case", "title_text"],
    )
    match_case(
        "pair_unknown_record",
        GOOD_PAIRS + [("L1", "R9", "0")],
        contains=[
            "pairs.csv",
            "column 'r'",
            "line 7",
            "'R9'",
            "records that do not exist",
            "Fix: add those records to right.csv",
        ],
    )
    match_case(
        "bad_match_label",
        GOOD_PAIRS[:4] + [("L4", "R1", "maybe")],
        contains=["pairs.csv", "column 'y'", "line 6", "'maybe'", "must be 0 or 1"],
    )
    match_case(
        "duplicate_pair",
        GOOD_PAIRS + [("L1", "R1", "1")],
        contains=["pairs.csv", "lines 2, 7", "listed more than once"],
    )
    giant = [("L1", r, "1" if r == "R1" else "0") for r in ("R1", "R2", "R3", "R4")] + [
        (left, "R1", "0") for left in ("L2", "L3", "L4")
    ]
    match_case(
        "one_giant_group",
        giant,
        contains=[
            "pairs.csv",
            "one group of pairs",
            "cannot be kept apart",
            "Fix: draw candidate pairs with a finer blocking key",
        ],
    )
    match_case(
        "schema_mismatch",
        GOOD_PAIRS,
        yaml=MATCH_YAML.replace("{{rid: id, name: text, city: categorical}}", "{{rid: id, name: text, city: text}}"),
        contains=["task.yaml", "same clean feature columns and roles", "Fix:"],
    )
    d = ROOT / "jsonl_bad_line"
    d.mkdir()
    (d / "task.yaml").write_text(
        CLS_YAML.format(id="jsonl_bad_line")
        .replace("path: items.csv", "path: items.jsonl")
        .replace("      Photo: image\n", "")
    )
    keys = ["Item ID", "Name", "Price", "Colour", "Kind"]
    lines = [json.dumps(dict(zip(keys, [r[0], r[1], float(r[2]) if r[2] else None, r[3], r[5]]))) for r in ROWS]
    lines[3] = '{"Item ID": "A4", "Name": "tall vase", "Price": 41,, "Colour": "white", "Kind": "vase"}'
    (d / "items.jsonl").write_text("\n".join(lines) + "\n")
    expect(d, ["items.jsonl", "line 4", "not valid JSON", "Fix: write one JSON object per line"])


if __name__ == "__main__":
    main()
