"""Writes tests/corpus/broken/: one small broken contribution per folder, with expect.json
holding its exact refusal message (and, where a case needs it, ingest params it runs under).
Run it again after changing a case:

    .venv/bin/python tests/corpus/make_broken.py

Image bombs are real files, small on disk and huge when decoded: a 20,000 x 20,000 PNG of
50 KB, a JPEG and a GIF whose headers declare 65,000 x 65,000 pixels.
"""

import io
import json
import os
import random
import shutil
import struct
import zlib
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).parent / "broken"


def png(color: str) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(b, "PNG")
    return b.getvalue()


def encoded(image: Image.Image, fmt: str) -> bytes:
    b = io.BytesIO()
    image.save(b, fmt)
    return b.getvalue()


def noise(size: int) -> Image.Image:
    """Seeded random pixels: they do not compress, so sizes are what they look like."""
    return Image.frombytes("RGB", (size, size), random.Random(size).randbytes(size * size * 3))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(side: int) -> bytes:
    """A whole, valid side x side 1-bit PNG: a few KB per 1,000 x 1,000, megabytes once decoded."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed pixels
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def png_text_bomb() -> bytes:
    """An 8 x 8 PNG carrying a compressed text chunk of 8 KB that inflates to 8 MB."""
    image = png("red")
    text = png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b" " * (8 << 20), 9))
    return image[:33] + text + image[33:]  # after the signature and IHDR


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header (SOF0) declares width x height pixels."""
    data = bytearray(encoded(noise(16), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_claiming(width: int, height: int) -> bytes:
    """A small GIF whose logical screen declares width x height pixels."""
    data = bytearray(encoded(noise(16), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


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


def expect(d: Path, message: str, params: dict | None = None) -> None:
    record = {"message": message} | ({"params": params} if params else {})
    (d / "expect.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")


def cls_case(name, message, rows=ROWS, header=HEADER, yaml=None, raw=None, images=None, params=None):
    d = ROOT / name
    (d / "img").mkdir(parents=True, exist_ok=True)
    (d / "task.yaml").write_text((yaml or CLS_YAML).format(id=name))
    if raw is not None:
        (d / "items.csv").write_bytes(raw)
    elif rows is not None:
        (d / "items.csv").write_text(header + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    for i, c in enumerate(["red", "blue", "green", "white", "black", "blue"]):
        (d / f"img/a{i + 1}.png").write_bytes(png(c))
    for rel, data in (images or {}).items():
        (d / rel).write_bytes(data)
    expect(d, message, params)
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


def match_case(name, message, pairs, yaml=None):
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
    expect(d, message)


def with_value(row, index, value):
    return row[:index] + (value,) + row[index + 1 :]


def main() -> None:
    shutil.rmtree(ROOT, ignore_errors=True)
    cls_case(
        "missing_file",
        "missing_file: items.csv: file not found. Fix: add items.csv to the task folder, or correct files.data.path in task.yaml",
        rows=None,
    )
    cls_case(
        "column_absent",
        "column_absent: items.csv: column 'Colour': the manifest names column(s) ['Colour'] that the file does not have (it has 'Item ID', 'Name', 'Price', 'Color', 'Photo', 'Kind'). Fix: correct the column names under files.data.columns in task.yaml, or add the column(s) to the file",
        header=HEADER.replace("Colour", "Color"),
    )
    cls_case(
        "unknown_role",
        "unknown_role: task.yaml: column 'Colour': files.data.columns.Colour.role: unknown role 'colour'. Fix: use one of: id, label, text, numeric, categorical, image, ignore, left_id, right_id",
        yaml=CLS_YAML.replace("Colour: categorical", "Colour: colour"),
    )
    cls_case(
        "no_label_column",
        "no_label_column: task.yaml (files.data): no column has role 'label'. Fix: mark the target column of items.csv with role label",
        yaml=CLS_YAML.replace("Kind: label", "Kind: categorical"),
    )
    cls_case(
        "two_label_columns",
        "two_label_columns: task.yaml (files.data): column 'Kind': 2 columns have role 'label': Colour, Kind. Fix: keep one label column; give the others role ignore or a feature role",
        yaml=CLS_YAML.replace("Colour: categorical", "Colour: label"),
    )
    cls_case(
        "duplicate_ids",
        "duplicate_ids: items.csv: column 'Item ID': lines 3, 5: 1 ids occur more than once (found 'A2'). Fix: make ids unique (or drop the duplicate rows)",
        rows=ROWS[:3] + [with_value(ROWS[3], 0, "A2")] + ROWS[4:],
    )
    cls_case(
        "missing_image",
        "missing_image: items.csv: column 'Photo': line 4: 1 image is missing (img/nope.png: file not found). Fix: add the missing image files or fix their paths (relative to the task folder)",
        rows=ROWS[:2] + [with_value(ROWS[2], 4, "img/nope.png")] + ROWS[3:],
    )
    cls_case(
        "unreadable_image",
        "unreadable_image: items.csv: column 'Photo': line 3: 1 image is damaged or truncated (img/a2.png: starts like a PNG file but its header does not parse). Fix: export or download them again",
        images={"img/a2.png": b"\x89PNG\r\n\x1a\nthis is not really a png"},
    )
    cls_case(
        "unparseable_numeric",
        "unparseable_numeric: items.csv: column 'Price': lines 3, 6: 2 values are not numbers (found '12,5', 'about 9'). Fix: clean them, list them in na_values if they mean 'missing', or give the column role categorical or text",
        rows=ROWS[:1] + [with_value(ROWS[1], 2, '"12,5"')] + ROWS[2:4] + [with_value(ROWS[4], 2, "about 9")] + ROWS[5:],
    )
    cls_case(
        "empty_file",
        "empty_file: items.csv: file is empty. Fix: export the data again; an empty file cannot be ingested",
        raw=b"",
    )
    cls_case(
        "header_only",
        "header_only: items.csv: file has no data rows. Fix: export the data again with its rows",
        raw=(HEADER + "\n").encode(),
    )
    latin1 = (
        HEADER + "\n" + "\n".join(",".join(with_value(r, 1, "café vase") if r[0] == "A4" else r) for r in ROWS) + "\n"
    )
    cls_case(
        "undeclared_latin1",
        "undeclared_latin1: items.csv: line 5: the file is declared UTF-8 but has bytes that are not UTF-8 (latin-1 or Windows-1252, probably) (found b'A4,caf\\xe9 vase,41,w'). Fix: declare `encoding: latin-1` for this file in task.yaml, or re-save the file as UTF-8",
        raw=latin1.encode("latin-1"),
    )
    cls_case(
        "ragged_rows",
        "ragged_rows: items.csv: lines 4, 7: rows have a different number of fields than the header's 6 (they have [4, 7]). Fix: quote values that contain a comma, or remove the extra or missing fields on those lines",
        rows=ROWS[:2] + [ROWS[2] + ("extra",)] + ROWS[3:5] + [ROWS[5][:4]],
    )
    cls_case(
        "undeclared_column",
        "undeclared_column: items.csv: column 'Notes': the file has column(s) ['Notes'] that the manifest gives no role. Fix: add them under files.data.columns with a role (use `ignore` to drop them)",
        header=HEADER + ",Notes",
        rows=[r + ("x",) for r in ROWS],
    )
    cls_case(
        "unmapped_label",
        "unmapped_label: items.csv: column 'Kind': lines 3, 5, 7: label values ['vase'] are not in label_mapping. Fix: add them to label_mapping in task.yaml",
        yaml=CLS_YAML + "label_mapping: {{mug: Mug}}\n",
    )
    cls_case(
        "image_path_escapes",
        "image_path_escapes: items.csv: column 'Photo': line 3: 1 image path leads out of the task folder (../../../etc/passwd: the path leaves the task folder). Fix: copy the images into the task folder and give their paths relative to it (links out of it are not followed)",
        rows=ROWS[:1] + [with_value(ROWS[1], 4, "../../../etc/passwd")] + ROWS[2:],
    )
    cls_case(
        "wrong_file_layout",
        "wrong_file_layout: task.yaml: files ['left'] do not fit a classification task. Fix: under `files:` name exactly {data} or {train, test}",
        yaml=CLS_YAML.replace("  data:", "  left:"),
    )
    cls_case(
        "bad_snake_case_name",
        "bad_snake_case_name: task.yaml: column 'Name': files.data.columns.Name.name: name 'Title Text' is not snake_case (lower-case letters, digits and single underscores, e.g. 'title_text'). Fix: correct 'files.data.columns.Name.name' in task.yaml",
        yaml=CLS_YAML.replace("name: title", "name: Title Text"),
    )

    # Images that cost a lot, are not images, or are not what they claim: refused from their size,
    # their header or their first bytes, before (or instead of) decoding them.
    cls_case(
        "image_bomb_png",
        "image_bomb_png: items.csv: column 'Photo': line 3: 1 image has too many pixels (img/a2.png: 20,000 x 20,000 pixels, over ingest.max_image_pixels (40,000,000)). Fix: downscale them, or raise ingest.max_image_pixels in params.yaml",
        images={"img/a2.png": png_bomb(20_000)},
    )
    cls_case(
        "image_bomb_jpeg_header",
        "image_bomb_jpeg_header: items.csv: column 'Photo': line 3: 1 image has too many pixels (img/a2.png: 65,000 x 65,000 pixels, over ingest.max_image_pixels (40,000,000)). Fix: downscale them, or raise ingest.max_image_pixels in params.yaml",
        images={"img/a2.png": jpeg_claiming(65_000, 65_000)},
    )
    cls_case(
        "image_bomb_gif_header",
        "image_bomb_gif_header: items.csv: column 'Photo': line 3: 1 image has too many pixels (img/a2.png: 65,535 x 65,535 pixels, over ingest.max_image_pixels (40,000,000)). Fix: downscale them, or raise ingest.max_image_pixels in params.yaml",
        images={"img/a2.png": gif_claiming(65_535, 65_535)},
    )
    cls_case(
        "image_text_chunk_bomb",
        "image_text_chunk_bomb: items.csv: column 'Photo': line 3: 1 image carries metadata that inflates past Pillow's safety limits (img/a2.png: a compressed metadata chunk over that limit). Fix: save them again without their metadata (e.g. open and re-save as plain PNG or JPEG)",
        images={"img/a2.png": png_text_bomb()},
    )
    cls_case(
        "image_truncated",
        "image_truncated: items.csv: column 'Photo': line 3: 1 image is damaged or truncated (img/a2.png: the file ends early). Fix: export or download them again",
        images={"img/a2.png": encoded(noise(64), "PNG")[:6000]},
    )
    cls_case(
        "image_too_large_file",
        "image_too_large_file: items.csv: column 'Photo': line 3: 1 image file is too large (img/a2.png: 0.11 MB, over ingest.max_image_mb (0.1)). Fix: recompress or downscale them, or raise ingest.max_image_mb in params.yaml",
        images={"img/a2.png": encoded(noise(200), "PNG")},
        params={"max_image_mb": 0.1},
    )
    cls_case(
        "image_html_page",
        "image_html_page: items.csv: column 'Photo': line 3: 1 file is not a PNG, JPEG, WebP, GIF, BMP or TIFF image (img/a2.png: an HTML page). Fix: convert them to PNG or JPEG",
        images={"img/a2.png": b"<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n"},
    )
    cls_case(
        "image_svg",
        "image_svg: items.csv: column 'Photo': line 3: 1 file is not a PNG, JPEG, WebP, GIF, BMP or TIFF image (img/a2.png: an SVG drawing). Fix: convert them to PNG or JPEG",
        images={"img/a2.png": b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>\n'},
    )
    cls_case(
        "image_empty_file",
        "image_empty_file: items.csv: column 'Photo': line 3: 1 file is not a PNG, JPEG, WebP, GIF, BMP or TIFF image (img/a2.png: an empty file). Fix: convert them to PNG or JPEG",
        images={"img/a2.png": b""},
    )
    d = cls_case(
        "image_is_a_folder",
        "image_is_a_folder: items.csv: column 'Photo': line 3: 1 image is missing (img/a2.png: a folder, not a file). Fix: add the missing image files or fix their paths (relative to the task folder)",
    )
    (d / "img/a2.png").unlink()
    (d / "img/a2.png").mkdir()
    (d / "img/a2.png/README").write_text("a folder where an image should be\n")
    d = cls_case(
        "image_link_out_of_task",
        "image_link_out_of_task: items.csv: column 'Photo': line 3: 1 image path leads out of the task folder (img/a2.png: a link to ../../missing_image/img/a2.png). Fix: copy the images into the task folder and give their paths relative to it (links out of it are not followed)",
    )
    (d / "img/a2.png").unlink()
    os.symlink("../../missing_image/img/a2.png", d / "img/a2.png")  # a valid image, but another task's
    cls_case(
        "image_problems_of_two_kinds",
        "2 problems:\n  - image_problems_of_two_kinds: items.csv: column 'Photo': line 5: 1 image is missing (img/gone.png: file not found). Fix: add the missing image files or fix their paths (relative to the task folder)\n  - image_problems_of_two_kinds: items.csv: column 'Photo': line 3: 1 image has too many pixels (img/a2.png: 20,000 x 20,000 pixels, over ingest.max_image_pixels (40,000,000)). Fix: downscale them, or raise ingest.max_image_pixels in params.yaml",
        rows=ROWS[:3] + [with_value(ROWS[3], 4, "img/gone.png")] + ROWS[4:],
        images={"img/a2.png": png_bomb(20_000)},
    )
    d = cls_case(
        "data_file_link_out_of_task",
        "data_file_link_out_of_task: items.csv: the file is a link to ../missing_image/items.csv, outside the task folder. Fix: copy the file into the task folder instead of linking to it (files.data.path in task.yaml)",
        rows=None,
    )
    os.symlink("../missing_image/items.csv", d / "items.csv")

    match_case(
        "pair_unknown_record",
        "pair_unknown_record: pairs.csv: column 'r': line 7: 1 pairs refer to right records that do not exist (found 'R9'). Fix: add those records to right.csv, or drop the pairs",
        GOOD_PAIRS + [("L1", "R9", "0")],
    )
    match_case(
        "bad_match_label",
        "bad_match_label: pairs.csv: column 'y': line 6: labels must be 0 or 1 (or values that label_mapping maps to 0/1) (found 'maybe'). Fix: fix these labels or add them to label_mapping",
        GOOD_PAIRS[:4] + [("L4", "R1", "maybe")],
    )
    match_case(
        "duplicate_pair",
        "duplicate_pair: pairs.csv: lines 2, 7: 1 pairs are listed more than once. Fix: list every (left, right) pair once",
        GOOD_PAIRS + [("L1", "R1", "1")],
    )
    giant = [("L1", r, "1" if r == "R1" else "0") for r in ("R1", "R2", "R3", "R4")] + [
        (left, "R1", "0") for left in ("L2", "L3", "L4")
    ]
    match_case(
        "one_giant_group",
        "one_giant_group: pairs.csv: one group of pairs linked by shared records holds 7 of 7 pairs, so train and test cannot be kept apart. Fix: draw candidate pairs with a finer blocking key (smaller blocks), or give the split yourself as train_pairs and test_pairs files",
        giant,
    )
    match_case(
        "schema_mismatch",
        "schema_mismatch: task.yaml (files.left / files.right): left and right records must have the same clean feature columns and roles; they differ in city (categorical on the left, text on the right). Fix: map both files' raw columns to the same clean names and roles (use `name:`), or mark extras ignore",
        GOOD_PAIRS,
        yaml=MATCH_YAML.replace("{{rid: id, name: text, city: categorical}}", "{{rid: id, name: text, city: text}}"),
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
    expect(
        d,
        'jsonl_bad_line: items.jsonl: line 4: lines are not valid JSON objects (Expecting property name enclosed in double quotes). Fix: write one JSON object per line, e.g. {"id": 1, "title": "..."}',
    )


if __name__ == "__main__":
    main()
