"""Ingest one contribution: validate it against its manifest, standardise it, split it,
publish the release to data/public/<task>/ and hide the test labels in data/private/<task>/.

Nothing is written unless the whole contribution is sound; a refused contribution gets
one message per problem, each naming the file, the column, the rows and the fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image, UnidentifiedImageError

from tasks.core import __version__
from tasks.core.errors import InputError, raise_all
from tasks.core.files import (
    sha256_bytes,
    sha256_file,
    sha256_tree,
    staged_dirs,
    write_csv,
    write_json,
    write_parquet,
    write_twins,
)
from tasks.core.manifest import FileSpec, TaskManifest, feature_schema, load_manifest
from tasks.core.params import IngestParams
from tasks.core.schema import (
    CARD,
    HIDDEN_LABELS,
    ID,
    IMAGES_DIR,
    INGEST_REPORT,
    LABEL,
    LEFT_ID,
    PAIR_ID,
    PRIVATE,
    PUBLIC,
    RIGHT_ID,
    SAMPLE_SUBMISSION,
    SPLIT,
    Role,
    TaskType,
)
from tasks.ingest.rawfiles import RawTable, read_raw
from tasks.ingest.split import grouped_pair_split, pair_groups, stratified_mask

NUMBER = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$|^\s*[+-]?(inf|infinity|nan)\s*$"
MATCH_LABELS = {"1": 1, "0": 0, "1.0": 1, "0.0": 0, "true": 1, "false": 0}
IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg", "MPO": "jpg", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}
OPENED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")  # Pillow tries no other plugin (MPO comes via JPEG)
CARD_VERSION = 2  # 2: classes from train only; the contribution digest and notes moved to the organiser report


@dataclass
class IngestReport:
    """What ingest did. `findings` may name hidden labels: show them to organisers only, never in logs."""

    task_id: str
    task_type: str
    rows: dict[str, int]
    images: int
    bad_images: int
    public_dir: Path
    private_dir: Path
    organiser_report: Path
    findings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """Safe to print anywhere: nothing in it depends on the test labels."""
        rows = ", ".join(f"{k} {v}" for k, v in self.rows.items())
        return f"{self.task_id} ({self.task_type}): {rows}; {self.images} images" + (
            f", {self.bad_images} unusable" if self.bad_images else ""
        )


def ingest_task(task_dir: Path, public_root: Path, private_root: Path, params: IngestParams) -> IngestReport:
    """Validate and publish one task. Raises InputError/InputErrors and writes nothing when refused.

    The release and the hidden labels are committed together (tasks.core.files.staged_dirs): a run
    killed at any point leaves both folders whole, and the next run finishes or replaces its commit.
    """
    task_dir = Path(task_dir)
    manifest = load_manifest(task_dir)
    prepared = _prepare(task_dir, manifest, params)
    public_dir, private_dir = Path(public_root) / manifest.id, Path(private_root) / manifest.id
    with staged_dirs([private_dir, public_dir]) as (priv, pub):  # the journal goes to the private side
        files = {}
        for name, table in prepared.tables.items():
            for path in write_twins(table, pub, name):
                files[path.name] = sha256_file(path)
        images = prepared.images.copy_to(pub / IMAGES_DIR)
        write_csv(sample_submission(manifest.type, prepared.tables), pub / SAMPLE_SUBMISSION)
        files[SAMPLE_SUBMISSION] = sha256_file(pub / SAMPLE_SUBMISSION)
        write_parquet(prepared.hidden, priv / HIDDEN_LABELS)
        write_json(priv / INGEST_REPORT, _organiser_report(manifest, prepared, sha256_tree(task_dir)))
        write_json(pub / CARD, _card(manifest, prepared, files, images))
    return IngestReport(
        task_id=manifest.id,
        task_type=manifest.type.value,
        rows={k: t.num_rows for k, t in prepared.tables.items()},
        images=len(images),
        bad_images=prepared.images.bad,
        public_dir=public_dir,
        private_dir=private_dir,
        organiser_report=private_dir / INGEST_REPORT,
        findings=[f["message"] for f in prepared.findings],
    )


def validate_task(task_dir: Path, params: IngestParams) -> TaskManifest:
    """Everything ingest checks, writing nothing: the gate for `mmtc add-task`."""
    manifest = load_manifest(Path(task_dir))
    _prepare(Path(task_dir), manifest, params)
    return manifest


# --- preparation (all checks, no writes) --------------------------------------------------


@dataclass
class Prepared:
    """Everything to publish, and apart from it (`findings`, `private_split`) what only organisers see."""

    tables: dict[str, pa.Table]
    hidden: pa.Table
    features: dict[str, Role]
    images: ImageCollector
    split: dict
    duplicates: dict
    classes: dict
    private_split: dict
    findings: list[dict] = field(default_factory=list)


def _prepare(task_dir: Path, m: TaskManifest, params: IngestParams) -> Prepared:
    raws = {key: read_raw(task_dir, m.id, key, spec, params.na_values) for key, spec in m.files.items()}
    images = ImageCollector(task_dir, m.id, params)
    records = {key: _standardise_records(raws[key], m.files[key], m, images) for key in m.record_files()}
    images.check()
    if m.type is TaskType.classification:
        return _prepare_classification(m, records, images, params)
    return _prepare_matching(m, raws, records, images, params)


def _standardise_records(raw: RawTable, spec: FileSpec, m: TaskManifest, images: ImageCollector) -> pa.Table:
    """Raw columns -> clean names and types by role; collects every problem of the file first."""
    errors: list[InputError] = []
    columns: dict[str, pa.Array] = {}
    where = dict(task=m.id, file=raw.path, row_label=raw.row_label)
    for raw_name, col in spec.columns.items():
        if col.role is Role.ignore:
            continue
        values = raw.table.column(raw_name).combine_chunks()
        name = spec.clean_name(raw_name)
        try:
            if col.role is Role.id:
                columns[ID] = _ids(values, raw, where | {"column": raw_name})
            elif col.role is Role.label:
                columns[LABEL] = _class_labels(values, m, raw, where | {"column": raw_name})
            elif col.role is Role.numeric:
                columns[name] = _numeric(values, raw, where | {"column": raw_name})
            elif col.role is Role.categorical:
                columns[name] = pc.utf8_trim_whitespace(_as_text(values))
            elif col.role is Role.text:
                columns[name] = _as_text(values)
            elif col.role is Role.image:
                columns[name] = images.collect(_as_text(values), raw, raw_name)
        except InputError as exc:
            errors.append(exc)
    raise_all(errors)
    order = [ID] + list(feature_schema(spec)) + ([LABEL] if LABEL in columns else [])
    return pa.table({name: columns[name] for name in order})


def _as_text(values: pa.Array) -> pa.Array:
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values.cast(pa.string())
    if pa.types.is_floating(values.type):
        # 12.0 from a float column means the id or code 12
        as_int = pc.cast(values, pa.int64(), safe=False)
        whole = pc.equal(pc.cast(as_int, pa.float64()), values)
        return pc.if_else(whole, pc.cast(as_int, pa.string()), pc.cast(values, pa.string()))
    return pc.cast(values, pa.string())


def _ids(values: pa.Array, raw: RawTable, where: dict) -> pa.Array:
    ids = pc.utf8_trim_whitespace(_as_text(values))
    empty = np.flatnonzero(pc.or_kleene(pc.is_null(ids), pc.equal(ids, "")).to_numpy(zero_copy_only=False))
    if len(empty):
        raise InputError(problem="empty ids", fix="give every row an id", rows=raw.row_numbers(empty), **where)
    if pc.count_distinct(ids).as_py() == len(ids):
        return ids
    series = pd.Series(ids.to_numpy(zero_copy_only=False))
    dup = series.duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        raise InputError(
            problem=f"{series[dup].nunique()} ids occur more than once",
            fix="make ids unique (or drop the duplicate rows)",
            rows=raw.row_numbers(rows),
            values=series[dup].unique()[:5].tolist(),
            **where,
        )
    return ids


def _numeric(values: pa.Array, raw: RawTable, where: dict) -> pa.Array:
    """float64 with NaN as null: one notion of missing downstream."""
    numbers = _parse_numbers(values, raw, where)
    return pc.if_else(pc.is_nan(numbers), pa.scalar(None, pa.float64()), numbers)


def _parse_numbers(values: pa.Array, raw: RawTable, where: dict) -> pa.Array:
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type) or pa.types.is_null(values.type):
        return pc.cast(values, pa.float64())
    if pa.types.is_boolean(values.type):
        return pc.cast(pc.cast(values, pa.int8()), pa.float64())
    text = _as_text(values)
    try:  # the common case, fast; the diagnosis below only runs on bad values
        return pc.cast(text, pa.float64())
    except pa.ArrowInvalid:
        pass
    ok = pc.or_kleene(pc.is_null(text), pc.match_substring_regex(text, NUMBER, ignore_case=True))
    bad = np.flatnonzero(~ok.to_numpy(zero_copy_only=False))
    if len(bad):
        shown = text.take(pa.array(bad[:5])).to_pylist()
        raise InputError(
            problem=f"{len(bad)} values are not numbers",
            fix="clean them, list them in na_values if they mean 'missing', or give the column role categorical or text",
            rows=raw.row_numbers(bad),
            values=shown,
            **where,
        )
    return pc.cast(pc.utf8_trim_whitespace(text), pa.float64())


def _class_labels(values: pa.Array, m: TaskManifest, raw: RawTable, where: dict) -> pa.Array:
    labels = pc.utf8_trim_whitespace(_as_text(values))
    empty = np.flatnonzero(pc.or_kleene(pc.is_null(labels), pc.equal(labels, "")).to_numpy(zero_copy_only=False))
    if len(empty):
        raise InputError(
            problem=f"{len(empty)} rows have no label",
            fix="label them, or drop them from the file",
            rows=raw.row_numbers(empty),
            **where,
        )
    if not m.label_mapping:
        return labels
    mapping = {k: str(v) for k, v in m.label_mapping.items()}
    as_list = labels.to_pylist()
    unmapped = [i for i, v in enumerate(as_list) if v not in mapping]
    if unmapped:
        missing = sorted({as_list[i] for i in unmapped})
        raise InputError(
            problem=f"label values {missing[:10]} are not in label_mapping",
            fix="add them to label_mapping in task.yaml",
            rows=raw.row_numbers(unmapped),
            **where,
        )
    return pa.array([mapping[v] for v in as_list], pa.string())


def _match_labels(values: pa.Array, m: TaskManifest, raw: RawTable, where: dict) -> pa.Array:
    as_list = [None if v is None else str(v).strip() for v in _as_text(values).to_pylist()]
    mapping = {k: int(v) for k, v in m.label_mapping.items()} if m.label_mapping else MATCH_LABELS
    lookup = {k.lower(): v for k, v in mapping.items()}
    bad = [i for i, v in enumerate(as_list) if v is None or v.lower() not in lookup]
    if bad:
        found = sorted({str(as_list[i]) for i in bad})[:5]
        raise InputError(
            problem="labels must be 0 or 1 (or values that label_mapping maps to 0/1)",
            fix="fix these labels or add them to label_mapping",
            rows=raw.row_numbers(bad),
            values=found,
            **where,
        )
    return pa.array([lookup[v.lower()] for v in as_list if v is not None], pa.int8())


# --- images -------------------------------------------------------------------------------

MB = 1 << 20
SUPPORTED_IMAGES = "PNG, JPEG, WebP, GIF, BMP or TIFF"
IMAGE_SIGNATURES = {  # first bytes of the supported formats: such a file that does not open is damaged
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
OTHER_SIGNATURES = {  # what a file named .jpg often is instead, so the message says it
    b"<svg": "an SVG drawing",
    b"<?xml": "an XML document (an SVG drawing?)",
    b"<!doctype html": "an HTML page",
    b"<html": "an HTML page",
    b"%pdf": "a PDF document",
}


@dataclass(frozen=True)
class ImageProblem:
    """One kind of bad image: how to count it in a message, and its fix."""

    singular: str
    plural: str
    fix: str


IMAGE_PROBLEMS = {
    "missing": ImageProblem(
        "image is missing",
        "images are missing",
        "add the missing image files or fix their paths (relative to the task folder)",
    ),
    "outside": ImageProblem(
        "image path leads out of the task folder",
        "image paths lead out of the task folder",
        "copy the images into the task folder and give their paths relative to it (links out of it are not followed)",
    ),
    "too_large": ImageProblem(
        "image file is too large",
        "image files are too large",
        "recompress or downscale them, or raise ingest.max_image_mb in params.yaml",
    ),
    "too_many_pixels": ImageProblem(
        "image has too many pixels",
        "images have too many pixels",
        "downscale them, or raise ingest.max_image_pixels in params.yaml",
    ),
    "not_an_image": ImageProblem(
        f"file is not a {SUPPORTED_IMAGES} image",
        f"files are not {SUPPORTED_IMAGES} images",
        "convert them to PNG or JPEG",
    ),
    "damaged": ImageProblem(
        "image is damaged or truncated",
        "images are damaged or truncated",
        "export or download them again",
    ),
    "unsafe": ImageProblem(
        "image carries metadata that inflates past Pillow's safety limits",
        "images carry metadata that inflates past Pillow's safety limits",
        "save them again without their metadata (e.g. open and re-save as plain PNG or JPEG)",
    ),
}


@contextlib.contextmanager
def pixel_limit(limit: int | None) -> Iterator[None]:
    """Pillow's own decompression-bomb guard at `limit` pixels, as an error, for the duration.

    Pillow keeps the limit in a module attribute and warns below twice the limit; ingest sets its own
    cap (ingest.max_image_pixels) around each call and restores Pillow's afterwards.
    """
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


class ImageCollector:
    """Checks every image a contribution names and publishes content-addressed copies.

    The release name is `images/<sha256>.<ext>`: the same picture in two rows or two tasks is one
    file, and the name is its checksum. Each file costs a bounded amount to check: its size is
    compared with ingest.max_image_mb before it is opened, its header with ingest.max_image_pixels
    before a pixel is decoded, and only then is it decoded (JPEG at 1/8 scale) to prove it whole.
    """

    def __init__(self, task_dir: Path, task_id: str, params: IngestParams):
        self.task_dir = Path(task_dir).resolve()
        self.task_id = task_id
        self.params = params
        self.sources: dict[str, Path] = {}
        self.problems: list[InputError] = []
        self.rows_seen = 0
        self.bad = 0
        self._checked: dict[Path, tuple[str | None, tuple[str, str] | None]] = {}

    def collect(self, paths: pa.Array, raw: RawTable, column: str) -> pa.Array:
        out: list[str | None] = []
        bad: dict[str, tuple[list[int], list[str]]] = {}
        for i, rel in enumerate(paths.to_pylist()):
            name, problem = self._check(rel)
            out.append(name)
            if problem:
                kind, detail = problem
                rows, details = bad.setdefault(kind, ([], []))
                rows.append(i)
                if detail not in details:
                    details.append(detail)
        self.rows_seen += len(out)
        for kind in IMAGE_PROBLEMS:  # one message per kind of problem, each with its own fix
            if kind not in bad:
                continue
            rows, details = bad[kind]
            self.bad += len(rows)
            what = IMAGE_PROBLEMS[kind]
            more = f"; and {len(details) - 3} more" if len(details) > 3 else ""
            self.problems.append(
                InputError(
                    problem=f"{len(rows)} {what.singular if len(rows) == 1 else what.plural} ({'; '.join(details[:3])}{more})",
                    fix=what.fix,
                    task=self.task_id,
                    file=raw.path,
                    column=column,
                    rows=raw.row_numbers(rows),
                    row_label=raw.row_label,
                )
            )
        return pa.array(out, pa.string())

    def _check(self, rel: str | None) -> tuple[str | None, tuple[str, str] | None]:
        """(release name, None) for a good image, (None, (kind, detail)) for a bad one."""
        if rel is None or not rel.strip():
            return None, ("missing", "no path given")
        rel = rel.strip()
        given = self.task_dir / rel
        try:
            path = given.resolve()
        except (OSError, RuntimeError):  # a loop of links
            return None, ("outside", f"{rel}: a loop of links")
        if path not in self._checked:
            self._checked[path] = self._inspect(rel, given, path)
        return self._checked[path]

    def _inspect(self, rel: str, given: Path, path: Path) -> tuple[str | None, tuple[str, str] | None]:
        if not path.is_relative_to(self.task_dir):
            if Path(os.path.normpath(given)).is_relative_to(self.task_dir):
                target = os.readlink(given) if given.is_symlink() else "a folder outside"
                return None, ("outside", f"{rel}: a link to {target}")
            return None, ("outside", f"{rel}: the path leaves the task folder")
        if path.is_dir():
            return None, ("missing", f"{rel}: a folder, not a file")
        if not path.exists():
            return None, ("missing", f"{rel}: file not found")
        if not path.is_file():
            return None, ("missing", f"{rel}: not a regular file")
        size = path.stat().st_size
        if size > self.params.max_image_mb * MB:
            return None, (
                "too_large",
                f"{rel}: {size / MB:.2f} MB, over ingest.max_image_mb ({self.params.max_image_mb:g})",
            )
        with open(path, "rb") as f:
            head = f.read(64)
        try:
            with pixel_limit(None), Image.open(path, formats=list(OPENED_FORMATS)) as img:
                fmt, (width, height) = img.format, img.size
                if width * height > self.params.max_image_pixels:  # from the header: nothing decoded yet
                    return None, (
                        "too_many_pixels",
                        f"{rel}: {width:,} x {height:,} pixels, over ingest.max_image_pixels ({self.params.max_image_pixels:,})",
                    )
                img.draft(img.mode, (max(1, width // 8), max(1, height // 8)))  # JPEG: decode at 1/8 scale
                with pixel_limit(self.params.max_image_pixels):
                    img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            return None, ("too_many_pixels", f"{rel}: a frame larger than its header says")
        except UnidentifiedImageError:
            return None, self._unidentified(rel, head)
        except ValueError as exc:
            if "decompressed" in str(exc).lower():  # a zlib bomb in a text or colour-profile chunk
                return None, ("unsafe", f"{rel}: a compressed metadata chunk over that limit")
            return None, ("damaged", f"{rel}: its pixels do not decode")
        except (OSError, SyntaxError, EOFError, struct.error, IndexError, TypeError) as exc:
            cut = "truncated" in str(exc).lower()
            return None, ("damaged", f"{rel}: {'the file ends early' if cut else 'its pixels do not decode'}")
        name = f"{IMAGES_DIR}/{sha256_file(path)}.{IMAGE_FORMATS.get(fmt or '', 'img')}"
        self.sources[name] = path
        return name, None

    @staticmethod
    def _unidentified(rel: str, head: bytes) -> tuple[str, str]:
        if not head:
            return "not_an_image", f"{rel}: an empty file"
        for signature, fmt in IMAGE_SIGNATURES.items():
            if head.startswith(signature):
                return "damaged", f"{rel}: starts like a {fmt} file but its header does not parse"
        if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
            return "damaged", f"{rel}: starts like a WebP file but its header does not parse"
        if head[4:8] == b"ftyp":
            return "not_an_image", f"{rel}: an HEIC, AVIF or video file"
        lowered = head.lstrip().lower()
        for signature, what in OTHER_SIGNATURES.items():
            if lowered.startswith(signature):
                return "not_an_image", f"{rel}: {what}"
        return "not_an_image", f"{rel}: content of no known kind"

    def check(self) -> None:
        if not self.problems:
            return
        share = self.bad / max(self.rows_seen, 1)
        if share > self.params.max_bad_image_share:
            raise_all(self.problems)

    def copy_to(self, folder: Path) -> dict[str, str]:
        """Copy each distinct image once; returns release name -> sha256."""
        if not self.sources:
            return {}
        folder.mkdir(parents=True, exist_ok=True)
        for name, src in sorted(self.sources.items()):
            shutil.copyfile(src, folder.parent / name)
        return {name: name.split("/")[1].split(".")[0] for name in sorted(self.sources)}


# --- seeds ----------------------------------------------------------------------------------

DRAWS_SEEDING = (
    "ingest.seed mixed with a digest of every row's id and label (kept private), so the draws cannot be replayed"
)


def draws_seed(seed: int, keys: pa.Table) -> int:
    """The seed of a task's random draws (train/test, public/private): `seed` mixed with a digest of
    every row's ids and label.

    A stratified draw with a known seed can be replayed: anyone who knows the seed, the code and the
    order of the contributor's rows (ids are often in file order) can tell which class each test row
    must have had to land where it did. The test labels are what participants lack, so with them in
    the seed the draws cannot be replayed; the seed is still reproducible from the versioned data.
    """
    digest = hashlib.sha256(f"{seed}\n".encode())
    order = pc.sort_indices(keys, sort_keys=[(name, "ascending") for name in keys.column_names])
    for column in keys.take(order).columns:  # sorted: the file's row order does not matter
        text = pc.cast(column.combine_chunks(), pa.large_string())  # ids and labels are never null here
        for buffer in text.buffers()[1:]:  # int64 offsets and UTF-8 bytes: defined by the Arrow format
            digest.update(memoryview(buffer))
    return int.from_bytes(digest.digest()[:16], "big")


# --- classification -------------------------------------------------------------------------


def _prepare_classification(
    m: TaskManifest, records: dict[str, pa.Table], images: ImageCollector, params: IngestParams
) -> Prepared:
    features = feature_schema(m.files[m.record_files()[0]])
    if m.given_split:
        train, test = records["train"], records["test"]
        overlap = set(train.column(ID).to_pylist()) & set(test.column(ID).to_pylist())
        if overlap:
            raise InputError(
                problem=f"{len(overlap)} ids are in both train and test",
                fix="give test rows their own ids, or drop the repeated rows",
                task=m.id,
                file=m.files["test"].path,
                column=m.files["test"].raw_by_role(Role.id)[0],
                values=sorted(overlap)[:5],
            )
        split: dict[str, Any] = {"method": "given by the contribution (separate train and test files)"}
        draws = draws_seed(params.seed, pa.concat_tables([train.select([ID, LABEL]), test.select([ID, LABEL])]))
    else:
        data = records["data"]
        labels = data.column(LABEL).to_numpy(zero_copy_only=False)
        draws = draws_seed(params.seed, data.select([ID, LABEL]))
        is_test = stratified_mask(labels, params.test_fraction, draws)
        train, test = data.filter(pa.array(~is_test)), data.filter(pa.array(is_test))
        split = {
            "method": "stratified by label; a class with one row stays in train",
            "test_fraction": params.test_fraction,
        }
    test_labels = test.column(LABEL).to_numpy(zero_copy_only=False)
    is_public = stratified_mask(test_labels, params.public_fraction, draws + 1, singletons_selected=True)
    hidden = pa.table(
        {ID: test.column(ID), LABEL: test.column(LABEL), SPLIT: pa.array(np.where(is_public, PUBLIC, PRIVATE))}
    ).sort_by(ID)
    train, test = train.sort_by(ID), test.sort_by(ID)
    counts = pd.Series(train.column(LABEL).to_numpy(zero_copy_only=False)).value_counts()
    # Published classes come from train alone: a class seen only in test is a fact about the hidden labels.
    classes = {"classes": sorted(counts.index), "train_counts": {k: int(v) for k, v in sorted(counts.items())}}
    test_counts = pd.Series(test_labels).value_counts()
    findings = []
    test_only = {k: int(v) for k, v in sorted(test_counts.items()) if k not in counts.index}
    if test_only:
        findings.append(
            {
                "kind": "test_only_classes",
                "classes": test_only,
                "message": f"{len(test_only)} classes occur in test but never in train, in {sum(test_only.values())} test rows: {list(test_only)[:10]}",
                "fix": "move some of their rows to the train file, or drop them; the card lists train classes only, so no participant can predict them",
            }
        )
    split |= {
        "seed": params.seed,
        "seeding": DRAWS_SEEDING,
        "public_fraction": params.public_fraction,
        "public_private": "stratified by label",
    }
    duplicates, copies = _duplicate_rows(train, test, list(features))
    findings += copies
    test = test.drop_columns([LABEL])
    private_split: dict[str, Any] = {
        part: {"rows": int(mask.sum()), "classes": int(len(set(test_labels[mask])))}
        for part, mask in ((PUBLIC, is_public), (PRIVATE, ~is_public))
    } | {"draws_seed": str(draws)}
    return Prepared(
        {"train": train, "test": test},
        hidden,
        features,
        images,
        split,
        duplicates,
        classes,
        private_split,
        findings,
    )


def _row_hashes(table: pa.Table, features: list[str]) -> np.ndarray:
    return pd.util.hash_pandas_object(table.select(features).to_pandas(), index=False).to_numpy()


def _duplicate_rows(train: pa.Table, test: pa.Table, features: list[str]) -> tuple[dict, list[dict]]:
    """Counts any participant can make from the published features (for the card), and for the
    organisers whether the test rows that copy a train row also copy its label."""
    if not features:
        return {}, []
    h_train = _row_hashes(train, features)
    h_test = _row_hashes(test, features)
    twins = pd.Series(h_test).isin(h_train).to_numpy()
    duplicates = {
        "test_rows_identical_to_a_train_row": int(twins.sum()),
        "train_rows_repeated_within_train": int(pd.Series(h_train).duplicated().sum()),
        "compared_on": "all feature columns (images by content)",
    }
    if not twins.any():
        return duplicates, []
    labelled = pd.DataFrame({"h": h_train, "label": train.column(LABEL).to_numpy(zero_copy_only=False)})
    copies = pd.DataFrame({"h": h_test[twins], "label": test.column(LABEL).to_numpy(zero_copy_only=False)[twins]})
    same = len(copies.merge(labelled.drop_duplicates(), on=["h", "label"]))
    finding = {
        "kind": "test_rows_copy_train_rows",
        "rows": int(twins.sum()),
        "same_label": same,
        "message": f"{int(twins.sum())} test rows have the features of a train row; {same} of them also have its label",
        "fix": "drop the repeated rows from test (or from train) unless repeats are part of the task",
    }
    return duplicates, [finding]


# --- matching -----------------------------------------------------------------------------


def _prepare_matching(
    m: TaskManifest,
    raws: dict[str, RawTable],
    records: dict[str, pa.Table],
    images: ImageCollector,
    params: IngestParams,
) -> Prepared:
    features = feature_schema(m.files["left"])
    left, right = records["left"].sort_by(ID), records["right"].sort_by(ID)
    pairs = {key: _pairs(raws[key], m.files[key], m, left, right) for key in m.pair_files()}
    if m.given_split:
        train_pairs, test_pairs = pairs["train_pairs"], pairs["test_pairs"]
        split: dict[str, Any] = {"method": "given by the contribution (separate train and test pair files)"}
        _check_no_shared_pairs(m, train_pairs, test_pairs)
        draws = draws_seed(params.seed, pa.concat_tables([train_pairs, test_pairs]))
    else:
        all_pairs = pairs["pairs"]
        lcodes = pc.index_in(all_pairs.column(LEFT_ID), left.column(ID)).to_numpy()
        rcodes = pc.index_in(all_pairs.column(RIGHT_ID), right.column(ID)).to_numpy()
        groups = pair_groups(lcodes, rcodes, left.num_rows, right.num_rows)
        labels = all_pairs.column(LABEL).to_numpy()
        draws = draws_seed(params.seed, all_pairs)
        result = grouped_pair_split(groups, labels, params.test_fraction, draws)
        if result.largest_group > params.max_group_share * all_pairs.num_rows:
            raise InputError(
                problem=f"one group of pairs linked by shared records holds {result.largest_group} of {all_pairs.num_rows} pairs, so train and test cannot be kept apart",
                fix="draw candidate pairs with a finer blocking key (smaller blocks), or give the split yourself as train_pairs and test_pairs files",
                task=m.id,
                file=m.files["pairs"].path,
            )
        train_pairs, test_pairs = (
            all_pairs.filter(pa.array(~result.is_test)),
            all_pairs.filter(pa.array(result.is_test)),
        )
        split = {
            "method": "grouped: pairs are linked when they share a left or right record; whole groups (connected components) go to train or test, so no record of a test pair occurs in a train pair",
            "test_fraction": params.test_fraction,
            "groups": result.n_groups,
            "largest_group_pairs": result.largest_group,
        }
    # Pair ids follow the published (left_id, right_id) order: no trace of the contribution's order
    # (a pairs file listing its matches first is common), and nothing a replayed draw could undo.
    test_pairs = test_pairs.sort_by([(LEFT_ID, "ascending"), (RIGHT_ID, "ascending")])
    pair_ids = [f"p{i:06d}" for i in range(test_pairs.num_rows)]
    test_pairs = test_pairs.add_column(0, PAIR_ID, pa.array(pair_ids, pa.string()))
    test_labels = test_pairs.column(LABEL).to_numpy()
    # Public and private pairs are kept apart like train and test: a pair's public feedback must say
    # nothing about a private pair, so pairs sharing a record fall on the same side.
    test_groups = pair_groups(
        pc.index_in(test_pairs.column(LEFT_ID), left.column(ID)).to_numpy(),
        pc.index_in(test_pairs.column(RIGHT_ID), right.column(ID)).to_numpy(),
        left.num_rows,
        right.num_rows,
    )
    is_public = grouped_pair_split(test_groups, test_labels, params.public_fraction, draws + 1).is_test
    hidden = pa.table(
        {
            PAIR_ID: test_pairs.column(PAIR_ID),
            LABEL: test_pairs.column(LABEL),
            SPLIT: pa.array(np.where(is_public, PUBLIC, PRIVATE)),
        }
    )
    split |= {
        "seed": params.seed,
        "seeding": DRAWS_SEEDING,
        "public_fraction": params.public_fraction,
        "public_private": "grouped like train and test: test pairs sharing a record are on the same side",
        "pair_ids": "in (left_id, right_id) order",
    }
    private_split: dict[str, Any] = {
        part: {
            "pairs": int(mask.sum()),
            "positives": int(test_labels[mask].sum()),
            "groups": int(len(np.unique(test_groups[mask]))),
        }
        for part, mask in ((PUBLIC, is_public), (PRIVATE, ~is_public))
    } | {"draws_seed": str(draws)}
    findings = []
    if test_labels.any() and not all(private_split[part]["positives"] for part in (PUBLIC, PRIVATE)):
        findings.append(
            {
                "kind": "positives_on_one_side",
                "message": f"all {int(test_labels.sum())} positive test pairs are in one part of the test set (public or private): they share records",
                "fix": "add positive pairs that share no record with these, or accept that one part has no positives",
            }
        )
    train_pairs = train_pairs.sort_by([(LEFT_ID, "ascending"), (RIGHT_ID, "ascending")])
    test_pairs = test_pairs.drop_columns([LABEL]).sort_by(PAIR_ID)
    train_labels = train_pairs.column(LABEL).to_numpy()
    classes = {
        "classes": [0, 1],
        "train_counts": {"0": int((train_labels == 0).sum()), "1": int((train_labels == 1).sum())},
    }
    duplicates = _duplicate_pairs(left, right, train_pairs, test_pairs, list(features))
    tables = {"left": left, "right": right, "train_pairs": train_pairs, "test_pairs": test_pairs}
    return Prepared(
        tables, hidden.sort_by(PAIR_ID), features, images, split, duplicates, classes, private_split, findings
    )


def _pairs(raw: RawTable, spec: FileSpec, m: TaskManifest, left: pa.Table, right: pa.Table) -> pa.Table:
    where = dict(task=m.id, file=raw.path, row_label=raw.row_label)
    columns, errors = {}, []
    for role, side in ((Role.left_id, left), (Role.right_id, right)):
        raw_name = spec.raw_by_role(role)[0]
        ids = pc.utf8_trim_whitespace(_as_text(raw.table.column(raw_name).combine_chunks()))
        known = pc.is_in(ids, value_set=side.column(ID)).to_numpy(zero_copy_only=False)
        unknown = np.flatnonzero(~known)
        if len(unknown):
            side_name = "left" if role is Role.left_id else "right"
            errors.append(
                InputError(
                    problem=f"{len(unknown)} pairs refer to {side_name} records that do not exist",
                    fix=f"add those records to {m.files[side_name].path}, or drop the pairs",
                    column=raw_name,
                    rows=raw.row_numbers(unknown),
                    values=ids.take(pa.array(unknown[:5])).to_pylist(),
                    **where,
                )
            )
        columns[role.value] = ids
    label_raw = spec.raw_by_role(Role.label)[0]
    try:
        columns[LABEL] = _match_labels(
            raw.table.column(label_raw).combine_chunks(), m, raw, where | {"column": label_raw}
        )
    except InputError as exc:
        errors.append(exc)
    raise_all(errors)
    table = pa.table(columns)
    keys = pd.DataFrame(
        {"l": columns[LEFT_ID].to_numpy(zero_copy_only=False), "r": columns[RIGHT_ID].to_numpy(zero_copy_only=False)}
    )
    dup = keys.duplicated(keep=False).to_numpy()
    if dup.any():
        raise InputError(
            problem=f"{int(keys.duplicated().sum())} pairs are listed more than once",
            fix="list every (left, right) pair once",
            rows=raw.row_numbers(np.flatnonzero(dup)),
            **where,
        )
    return table


def _check_no_shared_pairs(m: TaskManifest, train: pa.Table, test: pa.Table) -> None:
    key = lambda t: set(zip(t.column(LEFT_ID).to_pylist(), t.column(RIGHT_ID).to_pylist()))  # noqa: E731
    both = key(train) & key(test)
    if both:
        raise InputError(
            problem=f"{len(both)} pairs are in both train_pairs and test_pairs",
            fix="keep each pair in one of the two files",
            task=m.id,
            file=m.files["test_pairs"].path,
            values=sorted(both)[:5],
        )


def _duplicate_pairs(left: pa.Table, right: pa.Table, train: pa.Table, test: pa.Table, features: list[str]) -> dict:
    if not features:
        return {}
    h_left = pd.Series(_row_hashes(left, features), index=left.column(ID).to_pylist())
    h_right = pd.Series(_row_hashes(right, features), index=right.column(ID).to_pylist())

    def pair_hashes(t: pa.Table) -> set:
        return set(
            zip(
                h_left.loc[t.column(LEFT_ID).to_pylist()].to_numpy(),
                h_right.loc[t.column(RIGHT_ID).to_pylist()].to_numpy(),
            )
        )

    test_keys = list(
        zip(
            h_left.loc[test.column(LEFT_ID).to_pylist()].to_numpy(),
            h_right.loc[test.column(RIGHT_ID).to_pylist()].to_numpy(),
        )
    )
    train_keys = pair_hashes(train)
    return {
        "test_pairs_identical_to_a_train_pair": int(sum(k in train_keys for k in test_keys)),
        "compared_on": "the feature values of both records (images by content)",
    }


# --- the card (published) and the organiser report (private) ----------------------------------


def sample_submission(task_type: TaskType, tables: dict[str, pa.Table]) -> pa.Table:
    """A valid submission file: every test key with the most frequent train class (ties: the
    smallest), or 0 for every pair. Made from published tables only, so it says nothing of test labels."""
    if task_type is TaskType.classification:
        counts = pc.value_counts(tables["train"].column(LABEL).drop_null()).to_pylist()
        top = min(counts, key=lambda c: (-c["counts"], str(c["values"])))["values"] if counts else ""
        keys = tables["test"].column(ID)
        return pa.table({ID: keys, LABEL: pa.array([top] * len(keys), tables["train"].schema.field(LABEL).type)})
    keys = tables["test_pairs"].column(PAIR_ID)
    return pa.table({PAIR_ID: keys, LABEL: pa.array([0] * len(keys), pa.int64())})


def _card(m: TaskManifest, p: Prepared, files: dict, images: dict) -> dict:
    """Everything here is computed from what is published (train labels at most), never from test labels."""
    tables = {
        name: {
            "rows": t.num_rows,
            "columns": [{"name": f.name, "dtype": str(f.type), "role": _role_of(f.name, p.features)} for f in t.schema],
        }
        for name, t in p.tables.items()
    }
    return {
        "card_version": CARD_VERSION,
        "ingested_by": f"mmtc {__version__}",
        "task_id": m.id,
        "title": m.title,
        "description": m.description,
        "type": m.type.value,
        "track": m.track,
        "primary_metric": m.primary_metric,
        "source": m.source.model_dump() if m.source else None,
        "features": {name: role.value for name, role in p.features.items()},
        "text_template": m.text_template,
        "tables": tables,
        "classes": p.classes,
        "split": p.split,
        "duplicates": p.duplicates,
        "images": {
            "count": len(images),
            "naming": "images/<sha256 of the file>.<ext>; the name is the checksum",
            "digest": _digest(sorted(images)),
            "unusable_rows_published_as_null": p.images.bad,
        },
        "files_sha256": files,
        "hidden_labels": "test labels are kept out of this folder and used only by the scorer",
    }


def _organiser_report(m: TaskManifest, p: Prepared, contribution_sha: str) -> dict:
    """data/private/<task>/ingest_report.json: what organisers should review, hidden labels included.

    The contribution digest lives here, not in the card: it covers the raw test labels, so a published
    digest would let anyone check a guess of them.
    """
    return {
        "task_id": m.id,
        "contribution_sha256": contribution_sha,
        "findings": p.findings,
        "public_private": p.private_split,
        "unusable_images": [e.as_record() for e in p.images.problems],
    }


def _role_of(name: str, features: dict[str, Role]) -> str:
    if name in features:
        return features[name].value
    return {ID: "id", LABEL: "label", PAIR_ID: "pair_id", LEFT_ID: "left_id", RIGHT_ID: "right_id"}.get(name, "other")


def _digest(names: list[str]) -> str:
    return sha256_bytes("\n".join(names).encode())
