"""The embed stage: CLIP vectors of every image column and of the joined text of one task.

Writes data/embeddings/<task>/<image column>.parquet and text.parquet (table, id, vector,
missing; see tasks/schema.py) and meta.json. Work is keyed by content: the same picture in
two rows or two tasks, or an unchanged row after new rows were added, is embedded once and
then read from a content-addressed cache kept outside DVC's outputs (DVC deletes a stage's
outputs before running it). The cache only saves time: vectors are the same without it.

Images are read, decoded and preprocessed in DataLoader workers while the model runs on the
previous batch; texts are sorted by token length and each batch runs only as long as its
longest text.
"""

from __future__ import annotations

import hashlib
import os
import string
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tasks.core.errors import InputError
from tasks.core.files import atomic_write_bytes, staged_dir, write_json, write_parquet
from tasks.core.params import EmbedParams, TextChoice
from tasks.core.progress import Progress
from tasks.core.schema import (
    CARD,
    CLASSIFICATION_TABLES,
    EMB_MISSING,
    EMB_TABLE,
    EMB_VECTOR,
    EMBEDDING_META,
    ID,
    TEXT_EMBEDDING,
    Role,
    TaskType,
)
from tasks.embed.clip import ClipEncoder, WeightsIdentity, compute_label, load_encoder, resolve_device, text_lengths

RECORD_TABLES = {TaskType.classification: CLASSIFICATION_TABLES, TaskType.matching: ("left", "right")}
MAX_FAILED_LISTED = 1000  # meta.json lists at most this many failed rows (the count is always exact)
CACHE_MAX_PARTS = 16  # compact a cache folder into one file past this many parts
HASH_THREADS = 8


# --- the content-addressed cache -------------------------------------------------------------


class EmbeddingCache:
    """Vectors by content key in a few Parquet files: <root>/<namespace>/<kind>/part-*.parquet.

    The namespace names the model, the weights identity and how vectors are computed; a key is
    the sha256 of the image bytes or of the text. Parts are written atomically, never edited;
    several writers may add parts at once, and a reader that meets a vanished part skips it.
    """

    def __init__(self, root: Path, namespace: str, kind: str):
        self.folder = Path(root) / namespace / kind

    def parts(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet")) if self.folder.is_dir() else []

    def get(self, keys: list[str], dims: int) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        if not keys:
            return found
        wanted = pa.array(sorted(set(keys)), pa.string())
        for part in self.parts():
            try:
                if pq.read_schema(part).field("vector").type.list_size != dims:
                    continue
                # compacted parts are sorted by key in small row groups: the filter skips most of the file
                table = pq.read_table(part, filters=pc.is_in(pc.field("key"), value_set=wanted))
            except (OSError, pa.ArrowException) as exc:  # vanished by a compaction, or damaged: a miss
                warnings.warn(f"embedding cache: skipping {part} ({type(exc).__name__})", stacklevel=2)
                continue
            vectors = _fixed_list_to_numpy(table.column("vector"), dims)
            for key, vector in zip(table.column("key").to_pylist(), vectors):
                found[key] = vector
        return found

    def put(self, keys: list[str], vectors: np.ndarray) -> None:
        if not keys:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        table = pa.table(
            {
                "key": pa.array(keys, pa.string()),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1]),
            }
        )
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        atomic_write_bytes(
            self.folder / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet", sink.getvalue().to_pybytes()
        )
        if len(self.parts()) > CACHE_MAX_PARTS:
            self.compact()

    def compact(self) -> None:
        """Merge every part into one (keys deduplicated), then delete only the parts merged."""
        parts = self.parts()
        tables = []
        for part in parts:
            try:
                tables.append(pq.read_table(part))
            except (OSError, pa.ArrowException):
                continue
        if not tables:
            return
        merged = pa.concat_tables(tables)
        _, first = np.unique(merged.column("key").to_numpy(zero_copy_only=False), return_index=True)
        merged = merged.take(pa.array(first))  # np.unique sorts: one row per key, in key order
        sink = pa.BufferOutputStream()
        pq.write_table(merged, sink, compression="zstd", row_group_size=4096)
        atomic_write_bytes(
            self.folder / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet", sink.getvalue().to_pybytes()
        )
        for part in parts:
            part.unlink(missing_ok=True)


def _fixed_list_to_numpy(column: pa.ChunkedArray, dims: int) -> np.ndarray:
    if column.num_chunks == 0 or len(column) == 0:
        return np.zeros((0, dims), np.float32)
    flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return flat.astype(np.float32, copy=False).reshape(-1, dims)


# --- what gets embedded ------------------------------------------------------------------------


@dataclass
class Rows:
    """The rows of one output file, in output order, and the content key of each (None: missing)."""

    tables: list[str]
    ids: list[str]
    keys: list[str | None]
    values: list[str | None]  # image path or text, for failure records


@dataclass
class TextSpec:
    columns: list[str]
    template: str | None  # None: the default "name: value; ..." join
    source: str  # params | card | default


def text_spec(task_id: str, card: dict, choice: TextChoice | None) -> TextSpec | None:
    """Which columns make the text and how they are joined: params first, then the card's
    text_template, then the task's text columns as "name: value; ...". None: no text to embed."""
    features: dict[str, str] = card["features"]
    usable = [name for name, role in features.items() if role != Role.image.value]
    where = f"embed.text.{task_id}"

    def refuse(problem: str, fix: str, column: str) -> None:
        raise InputError(problem=problem, fix=fix, task=task_id, file="params.yaml", column=column)

    columns = None
    if choice is not None and choice.columns is not None:
        if not choice.columns:
            return None  # `columns: []`: no text embedding for this task
        unknown = [c for c in choice.columns if c not in usable]
        if unknown:
            refuse(
                f"text columns {unknown} are not feature columns of {task_id}",
                f"choose from {', '.join(usable)}",
                f"{where}.columns",
            )
        columns = list(dict.fromkeys(choice.columns))
    if choice is not None and choice.template is not None:
        template, source = choice.template, "params"
    elif columns is None and card.get("text_template"):
        template, source = card["text_template"], "card"
    else:
        template, source = None, "params" if columns is not None else "default"
    if template is not None:
        allowed = columns if columns is not None else usable
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        except ValueError as exc:
            fields = [f"<{exc}>"]
        bad = [f for f in fields if f not in allowed]
        if bad or not fields:
            place = (
                f"{where}.template in params.yaml"
                if source == "params"
                else f"text_template in task.yaml (or override it with {where}.template)"
            )
            refuse(
                f"text template {template!r} names {bad or 'no column'}, not among the columns it may use",
                f"use only {', '.join('{' + c + '}' for c in allowed)} in {place}",
                f"{where}.template",
            )
        columns = list(dict.fromkeys(fields))
    elif columns is None:
        columns = [name for name, role in features.items() if role == Role.text.value]
    return TextSpec(columns, template, source) if columns else None


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:  # NaN
            return ""
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def join_text(spec: TextSpec, record: dict[str, Any]) -> str | None:
    """One row's text; None when every chosen column is empty (the row is then `missing`)."""
    values = {c: _as_text(record.get(c)).strip() for c in spec.columns}
    if not any(values.values()):
        return None
    if spec.template is None:
        text = "; ".join(f"{c.replace('_', ' ')}: {v}" for c, v in values.items() if v)
    else:
        text = spec.template.format_map(values)
    return " ".join(text.split()) or None


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- the stage ---------------------------------------------------------------------------------


@dataclass
class FileReport:
    kind: str  # image | text
    stem: str
    rows: int
    with_value: int
    missing: int
    failed: int
    distinct: int
    cache_hits: int
    cache_misses: int
    seconds: float = 0.0
    detail: dict = field(default_factory=dict)

    def meta(self) -> dict:
        """What the output is: the same inputs give the same dict, however much came from the cache."""
        return {
            "kind": self.kind,
            "rows": self.rows,
            "with_value": self.with_value,
            "missing": self.missing,
            "failed": self.failed,
            "distinct_items": self.distinct,
            **self.detail,
        }

    def run_stats(self) -> dict:
        """How this run went: cache use and speed. Kept out of meta.json so that a rerun served
        from the cache does not look like new embeddings to the stages downstream."""
        return {
            "rows": self.rows,
            "distinct_items": self.distinct,
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "seconds": round(self.seconds, 2),
            "embedded_per_second": round(self.cache_misses / self.seconds, 1)
            if self.cache_misses and self.seconds > 0
            else None,
        }


@dataclass
class EmbedReport:
    task_id: str
    out_dir: Path
    device: str
    files: list[FileReport]
    failed: list[dict]
    weights: WeightsIdentity
    seconds: float

    @property
    def cache_hits(self) -> int:
        return sum(f.cache_hits for f in self.files)

    @property
    def cache_misses(self) -> int:
        return sum(f.cache_misses for f in self.files)

    def run_metrics(self, cache_enabled: bool) -> dict:
        """metrics/embed/<task>.json: declared as DVC metrics, not as an input of training."""
        return {
            "task": self.task_id,
            "device": self.device,
            "seconds": round(self.seconds, 2),
            "cache": {
                "enabled": cache_enabled,
                "hits": self.cache_hits,
                "misses": self.cache_misses,
                "counted": "distinct items (content), not rows",
            },
            "files": {f"{f.stem}.parquet": f.run_stats() for f in self.files},
        }

    def summary(self) -> str:
        parts = []
        for f in self.files:
            rate = (
                f" in {f.seconds:.1f} s ({f.cache_misses / f.seconds:.1f}/s)"
                if f.cache_misses and f.seconds > 0
                else ""
            )
            parts.append(
                f"{f.stem}: {f.rows} rows, {f.distinct} distinct, {f.cache_hits} from cache, {f.cache_misses} embedded{rate}"
                + (f", {f.failed} failed" if f.failed else "")
            )
        return (
            f"{self.task_id} [{self.weights.label()}; {compute_label(self.device)}] "
            + ("; ".join(parts) or "nothing to embed")
            + f" ({self.seconds:.1f} s)"
        )


def embed_task(
    task_id: str,
    public_root: Path,
    out_root: Path,
    params: EmbedParams,
    weights: WeightsIdentity,
    *,
    cache_root: Path | None = None,
    encoder: ClipEncoder | None = None,
    memo_dir: Path | None = None,
    progress: bool = True,
) -> EmbedReport:
    """Embed one task's release into out_root/<task_id>/. The model is loaded only when something
    is not in the cache. Raises InputError when more images fail than params.max_failed_share
    allows (vectors computed so far stay in the cache)."""
    start = time.perf_counter()
    release = Path(public_root) / task_id
    card = _read_card(release, task_id)
    task_type = TaskType(card["type"])
    tables = RECORD_TABLES[task_type]
    image_columns = [name for name, role in card["features"].items() if role == Role.image.value]
    spec = text_spec(task_id, card, params.text.get(task_id))
    if TEXT_EMBEDDING in image_columns and spec is not None:
        raise InputError(
            problem=f"the image column '{TEXT_EMBEDDING}' would overwrite the text embedding file",
            fix="give the image column another clean name with `name:` in task.yaml",
            task=task_id,
            column=TEXT_EMBEDDING,
        )
    needed = list(dict.fromkeys(image_columns + (spec.columns if spec else [])))
    data = {t: pq.read_table(release / f"{t}.parquet", columns=[ID, *needed]) for t in tables}

    device = encoder.device if encoder is not None else resolve_device(params.device)
    namespace = f"{weights.model}-{weights.cache_key[:24]}-{compute_label(device)}"
    holder = _EncoderHolder(encoder, lambda: load_encoder(weights, params.clip, device, memo_dir))
    if weights.random_init:
        print(f"{task_id}: embedding with RANDOM-INIT CLIP weights ({weights.reason})", file=sys.stderr)

    outputs: dict[str, tuple[Rows, np.ndarray, np.ndarray]] = {}
    reports: list[FileReport] = []
    failed: list[dict] = []
    for column in image_columns:
        rows, read_failures = _image_rows(release, data, column)
        cache = EmbeddingCache(cache_root, namespace, "image") if cache_root else None
        t0 = time.perf_counter()
        vectors, missing, decode_failures, stats = _vectors_for(
            rows,
            weights.embed_dim,
            cache,
            lambda keys, values: embed_image_files(
                holder.get(),
                [release / v for v in values],
                keys,
                params.image_batch_size,
                params.workers,
                progress,
                f"embed {task_id} image {column}",
            ),
            read_failures,
        )
        column_failed = [
            i
            for i in range(len(rows.ids))
            if rows.keys[i] is not None and (rows.keys[i] in decode_failures or i in read_failures)
        ]
        for i in column_failed:
            failed.append(
                {
                    "table": rows.tables[i],
                    "id": rows.ids[i],
                    "column": column,
                    "path": rows.values[i],
                    "reason": read_failures.get(i) or decode_failures[rows.keys[i]],
                }
            )
        with_value = sum(v is not None for v in rows.values)
        reports.append(
            FileReport(
                "image",
                column,
                len(rows.ids),
                with_value,
                int(missing.sum()),
                len(column_failed),
                stats["distinct"],
                stats["hits"],
                stats["misses"],
                time.perf_counter() - t0,
                {"column": column},
            )
        )
        outputs[column] = (rows, vectors, missing)
    if spec is not None:
        rows = _text_rows(data, spec)
        cache = EmbeddingCache(cache_root, namespace, "text") if cache_root else None
        t0 = time.perf_counter()
        vectors, missing, _, stats = _vectors_for(
            rows,
            weights.embed_dim,
            cache,
            lambda keys, values: (
                embed_text_list(holder.get(), values, keys, params.text_batch_size, progress, f"embed {task_id} text"),
                {},
            ),
            {},
        )
        detail = {"columns": spec.columns, "template": spec.template, "template_source": spec.source}
        reports.append(
            FileReport(
                "text",
                TEXT_EMBEDDING,
                len(rows.ids),
                sum(v is not None for v in rows.values),
                int(missing.sum()),
                0,
                stats["distinct"],
                stats["hits"],
                stats["misses"],
                time.perf_counter() - t0,
                detail,
            )
        )
        outputs[TEXT_EMBEDDING] = (rows, vectors, missing)

    _check_failures(task_id, reports, failed, params.max_failed_share)
    out_dir = Path(out_root) / task_id
    with staged_dir(out_dir) as stage:
        for stem, (rows, vectors, missing) in outputs.items():
            write_parquet(_output_table(rows, vectors, missing), stage / f"{stem}.parquet")
        write_json(stage / EMBEDDING_META, _meta(task_id, task_type, tables, weights, device, reports, failed, params))
    return EmbedReport(task_id, out_dir, device, reports, failed, weights, time.perf_counter() - start)


class _EncoderHolder:
    """Loads the model on first need: a run served wholly from the cache never loads it."""

    def __init__(self, encoder: ClipEncoder | None, load: Callable[[], ClipEncoder]):
        self.loaded, self._load = encoder, load

    def get(self) -> ClipEncoder:
        if self.loaded is None:
            self.loaded = self._load()
        return self.loaded


def _read_card(release: Path, task_id: str) -> dict:
    import json

    path = release / CARD
    if not path.is_file():
        raise InputError(
            problem=f"no release at {release} (card.json missing)",
            fix=f"run `mmtc ingest {task_id}` first (`dvc repro` does)",
            task=task_id,
            file=str(path),
        )
    return json.loads(path.read_text(encoding="utf-8"))


def _image_rows(release: Path, data: dict[str, pa.Table], column: str) -> tuple[Rows, dict[int, str]]:
    """Rows in output order with the sha256 of each image's bytes; unreadable files by row index."""
    rows = _ordered_rows(data, column)
    paths = sorted({v for v in rows.values if v is not None})
    root = release.resolve()

    def digest(value: str) -> tuple[str | None, str | None]:
        path = (release / value).resolve()
        if not path.is_relative_to(root):
            return None, "path leaves the release folder"
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest(), None
        except FileNotFoundError:
            return None, "file not found"
        except OSError as exc:
            return None, f"unreadable file ({type(exc).__name__}: {exc.strerror or exc})"

    with ThreadPoolExecutor(max_workers=HASH_THREADS) as pool:
        digests = dict(zip(paths, pool.map(digest, paths)))
    failures: dict[int, str] = {}
    for i, value in enumerate(rows.values):
        if value is None:
            continue
        key, reason = digests[value]
        rows.keys[i] = key
        if key is None:
            rows.keys[i] = f"unreadable:{value}"  # not None: the row has an image, it just failed
            failures[i] = reason or "unreadable"
    return rows, failures


def _text_rows(data: dict[str, pa.Table], spec: TextSpec) -> Rows:
    tables, ids, values = [], [], []
    for name, table in data.items():
        order = _id_order(table)
        records = table.select([ID, *spec.columns]).take(order).to_pylist()
        for record in records:
            tables.append(name)
            ids.append(str(record[ID]))
            values.append(join_text(spec, record))
    return Rows(tables, ids, [text_key(v) if v is not None else None for v in values], values)


def _ordered_rows(data: dict[str, pa.Table], column: str) -> Rows:
    tables, ids, values = [], [], []
    for name, table in data.items():
        sub = table.select([ID, column]).take(_id_order(table))
        tables += [name] * sub.num_rows
        ids += [str(v) for v in sub.column(ID).to_pylist()]
        values += sub.column(column).to_pylist()
    return Rows(tables, ids, [None] * len(ids), values)


def _id_order(table: pa.Table) -> pa.Array:
    """Rows sorted by id (as text): a total order, so outputs are byte-stable."""
    ids = pc.cast(table.column(ID), pa.string())
    return pc.sort_indices(pa.table({"id": ids}), sort_keys=[("id", "ascending")])


def _vectors_for(rows: Rows, dims: int, cache: EmbeddingCache | None, embed: Callable, read_failures: dict[int, str]):
    """Vectors per row: cache hits, plus one embedding per distinct new key. Returns
    (vectors [n, dims], missing [n], failures by key, stats)."""
    unreadable = {rows.keys[i] for i in read_failures}
    first_value: dict[str, str | None] = {}
    for key, value in zip(rows.keys, rows.values):
        if key is not None and key not in unreadable and key not in first_value:
            first_value[key] = value
    keys = sorted(first_value)
    found = cache.get(keys, dims) if cache is not None else {}
    todo = [k for k in keys if k not in found]
    fresh, failures = embed(todo, [first_value[k] for k in todo]) if todo else ({}, {})
    if cache is not None:
        good = [k for k in todo if k in fresh]
        cache.put(good, np.stack([fresh[k] for k in good]) if good else np.zeros((0, dims), np.float32))
    vectors = np.zeros((len(rows.keys), dims), np.float32)
    missing = np.ones(len(rows.keys), bool)
    for i, key in enumerate(rows.keys):
        vector = found.get(key) if key is not None else None
        if vector is None and key is not None:
            vector = fresh.get(key)
        if vector is not None:
            vectors[i], missing[i] = vector, False
    failures = {**failures, **dict.fromkeys(unreadable, "unreadable")}
    return (
        vectors,
        missing,
        failures,
        {"distinct": len(keys) + len(unreadable), "hits": len(found), "misses": len(todo)},
    )


# --- images --------------------------------------------------------------------------------------


class ImageFiles:
    """A Dataset of image files: decoding and preprocessing happen in DataLoader workers.

    A file that does not decode gives (index, None, reason) instead of stopping the run.
    """

    def __init__(self, paths: list[Path], transform: Callable):
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        from PIL import Image

        try:
            with Image.open(self.paths[index]) as image:
                return index, self.transform(image), None
        except Exception as exc:  # any decode failure is recorded for this item, not raised
            return (
                index,
                None,
                f"not a readable image ({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})",
            )


def collate_images(batch: list) -> tuple[list[int], Any, list[tuple[int, str]]]:
    import torch

    good = [(i, x) for i, x, _ in batch if x is not None]
    bad = [(i, reason) for i, x, reason in batch if x is None]
    pixels = torch.stack([x for _, x in good]) if good else None
    return [i for i, _ in good], pixels, bad


def decode_workers(workers: str | int, device: str) -> int:
    """'auto': on CPU one process (decoding overlaps the model, which needs the cores); on CUDA all
    cores but one, since decoding must keep up with a GPU."""
    if workers != "auto":
        return int(workers)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(16, cores - 1)) if device == "cuda" else 1


def image_loader(paths: list[Path], transform: Callable, batch_size: int, workers: int, pin_memory: bool):
    """Batches of preprocessed images, decoded by `workers` processes ahead of the model."""
    from torch.utils.data import DataLoader, Dataset

    workers = min(workers, max(1, -(-len(paths) // batch_size)))
    dataset = cast("Dataset", ImageFiles(paths, transform))  # a map-style dataset: __len__ and __getitem__
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate_images,
        pin_memory=pin_memory,
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
    )


def embed_image_files(
    encoder: ClipEncoder,
    paths: list[Path],
    keys: list[str],
    batch_size: int,
    workers: str | int,
    progress: bool = False,
    desc: str = "images",
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """key -> vector for the files that decode, key -> reason for those that do not."""
    import torch

    loader = image_loader(
        paths,
        encoder.transform,
        batch_size,
        decode_workers(workers, encoder.device),
        pin_memory=encoder.device == "cuda",
    )
    done: list[tuple[list[int], torch.Tensor]] = []
    failures: dict[str, str] = {}
    vectors: dict[str, np.ndarray] = {}
    with Progress(desc, len(paths), "img", enabled=progress) as bar:
        for indices, pixels, bad in loader:
            for i, reason in bad:
                failures[keys[i]] = reason
            if pixels is not None:
                done.append((indices, encoder.encode_images(pixels)))  # stays on the device: no sync per batch
            bar.update(len(indices) + len(bad))
            if len(done) >= 64:
                _collect(done, keys, vectors)
    _collect(done, keys, vectors)
    return vectors, failures


def _collect(done: list, keys: list[str], vectors: dict[str, np.ndarray]) -> None:
    for indices, features in done:
        for i, row in zip(indices, features.cpu().numpy()):
            vectors[keys[i]] = row
    done.clear()


# --- texts ---------------------------------------------------------------------------------------


def embed_text_list(
    encoder: ClipEncoder,
    texts: list[str],
    keys: list[str],
    batch_size: int,
    progress: bool = False,
    desc: str = "texts",
) -> dict[str, np.ndarray]:
    """key -> vector; texts are batched by token length so that little padding is computed."""
    tokens = encoder.tokenize(texts)
    order = np.argsort(text_lengths(tokens), kind="stable")
    out: list[tuple[np.ndarray, Any]] = []
    with Progress(desc, len(texts), "text", enabled=progress) as bar:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            out.append((batch, encoder.encode_tokens(tokens[batch])))
            bar.update(len(batch))
    vectors: dict[str, np.ndarray] = {}
    for batch, features in out:
        for i, row in zip(batch, features.cpu().numpy()):
            vectors[keys[i]] = row
    return vectors


# --- outputs -------------------------------------------------------------------------------------


def _check_failures(task_id: str, reports: list[FileReport], failed: list[dict], max_share: float) -> None:
    for report in reports:
        if report.kind != "image" or not report.failed:
            continue
        share = report.failed / max(report.with_value, 1)
        rows = [f for f in failed if f["column"] == report.stem]
        reasons = sorted({f["reason"] for f in rows})
        if share > max_share:
            raise InputError(
                problem=(
                    f"{report.failed} of {report.with_value} images ({share:.1%}) could not be read, more than embed.max_failed_share "
                    f"({max_share:.1%}); ids {', '.join(f['table'] + ':' + f['id'] for f in rows[:5])}{' ...' if len(rows) > 5 else ''} ({'; '.join(reasons[:3])})"
                ),
                fix="replace the broken images in the contribution and re-ingest, or raise embed.max_failed_share to embed the rest (they get a zero vector and missing = true)",
                task=task_id,
                file=f"images of column '{report.stem}'",
                column=report.stem,
            )
        print(
            f"{task_id}: warning: {report.failed} of {report.with_value} images in '{report.stem}' could not be read; zero vectors, missing = true (see meta.json)",
            file=sys.stderr,
        )


def _output_table(rows: Rows, vectors: np.ndarray, missing: np.ndarray) -> pa.Table:
    n, dims = vectors.shape
    offsets = pa.array(np.arange(0, (n + 1) * dims, dims, dtype=np.int32))
    values = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), pa.float32())
    return pa.table(
        {
            EMB_TABLE: pa.array(rows.tables, pa.string()),
            ID: pa.array(rows.ids, pa.string()),
            EMB_VECTOR: pa.ListArray.from_arrays(offsets, values, type=pa.list_(pa.float32())),
            EMB_MISSING: pa.array(missing, pa.bool_()),
        }
    )


def _meta(
    task_id,
    task_type,
    tables,
    weights: WeightsIdentity,
    device: str,
    reports: list[FileReport],
    failed: list[dict],
    params: EmbedParams,
) -> dict:
    return {
        "task": task_id,
        "type": task_type.value,
        "tables": list(tables),
        "model": weights.model,
        "weights": weights.model_dump(mode="json"),
        "weights_label": weights.label(),
        "random_init": weights.random_init,
        "dims": weights.embed_dim,
        "device": device,
        "dtype": "float16 autocast (vectors stored as float32)" if device == "cuda" else "float32",
        "vectors": "list<float32>, L2-normalised; zeros where missing",
        "files": {f"{r.stem}.parquet": r.meta() for r in reports},
        "max_failed_share": params.max_failed_share,
        "n_failed": len(failed),
        "failed": failed[:MAX_FAILED_LISTED],
    }
