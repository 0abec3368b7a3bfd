"""Small releases in the published layout (card.json, record tables, images/<sha256>.png) and a
tiny CLIP with random weights, for the embed tests."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from tasks.core.params import ClipParams, EmbedParams

TINY = "mmtc-tiny-test"
WORDS = ["red", "mug", "blue", "vase", "tall", "lamp", "oak", "steel", "nordic", "glass", "small", "large"]


def tiny_clip(**overrides) -> ClipParams:
    base = {"model": TINY, "pretrained": None, "if_unavailable": "random-init", "seed": 0, "offline": True}
    return ClipParams(**{**base, **overrides})


def embed_params(**overrides) -> EmbedParams:
    base = {
        "clip": tiny_clip(),
        "device": "cpu",
        "image_batch_size": 4,
        "text_batch_size": 5,
        "workers": 0,
        "max_failed_share": 0.0,
    }
    return EmbedParams(**{**base, **overrides})


def png(i: int) -> bytes:
    """A distinct little picture per i: two colours split at a row that depends on i."""
    image = Image.new("RGB", (24, 16), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
    image.paste((255 - (i * 37) % 256, 40, (i * 11) % 256), (0, 0, 24, 1 + i % 15))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def record(i: int, with_image: bool = True) -> dict:
    return {
        "id": f"R{i:04d}",
        "title": " ".join(WORDS[(i * k) % len(WORDS)] for k in (1, 3, 5)) + f" {i}",
        "colour": WORDS[i % 4],
        "price": float(i) + 0.5,
        "photo": png(i) if with_image else None,
    }


def make_release(
    public: Path,
    task: str,
    tables: dict[str, list[dict]],
    task_type: str = "classification",
    text_template: str | None = "{title}",
) -> Path:
    """Write a release like ingest does: images content-addressed, image columns holding release paths."""
    folder = Path(public) / task
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        out = []
        for row in rows:
            row = dict(row)
            data = row.get("photo")
            if isinstance(data, bytes):
                rel = f"images/{hashlib.sha256(data).hexdigest()}.png"
                (folder / rel).write_bytes(data)
                row["photo"] = rel
            out.append(row)
        schema = pa.schema(
            [
                ("id", pa.string()),
                ("title", pa.string()),
                ("colour", pa.string()),
                ("price", pa.float64()),
                ("photo", pa.string()),
            ]
        )
        pq.write_table(pa.Table.from_pylist(out, schema=schema), folder / f"{name}.parquet")
    card = {
        "task_id": task,
        "type": task_type,
        "features": {"title": "text", "colour": "categorical", "price": "numeric", "photo": "image"},
        "text_template": text_template,
    }
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def classification(public: Path, task: str, n: int, start: int = 0, **kwargs) -> Path:
    rows = [record(i) for i in range(start, start + n)]
    return make_release(public, task, {"train": rows[: (2 * n) // 3], "test": rows[(2 * n) // 3 :]}, **kwargs)
