"""Tiny releases and embedding files for the train-stage tests, built in a temporary folder.

They follow the contracts of tasks/core/schema.py (release tables, card.json, embedding files)
without running demo, ingest or embed, so a test needs seconds, not minutes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DIM = 12
COLOURS = ["red", "blue", "green", "black"]
SIZES = ["S", "M", "L", "XL"]


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def write_embedding(
    path: Path, rows: list[tuple[str, str]], vectors: np.ndarray, missing: np.ndarray | None = None
) -> None:
    """One embedding file: table, id, vector (list<float32>, zeros when missing), missing."""
    missing = np.zeros(len(rows), dtype=bool) if missing is None else missing
    vectors = np.where(missing[:, None], 0.0, vectors).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "table": pa.array([t for t, _ in rows], pa.string()),
                "id": pa.array([i for _, i in rows], pa.string()),
                "vector": pa.array(list(vectors), pa.list_(pa.float32())),
                "missing": pa.array(missing, pa.bool_()),
            }
        ),
        path,
    )
    (path.parent / "meta.json").write_text(json.dumps({"model": "synthetic", "weights": "test", "dims": DIM}))


def classification_release(
    root: Path, task: str = "toy_items", n: int = 160, seed: int = 0, classes: int = 4
) -> tuple[Path, Path]:
    """Public release + embeddings of a classification task; the photo carries the class."""
    rng = np.random.default_rng(seed)
    public, emb = root / "public" / task, root / "embeddings" / task
    public.mkdir(parents=True)
    names = [f"kind_{k}" for k in range(classes)]
    label = rng.integers(0, classes, n)
    label[:2] = 0  # a rare class with one row stays in train
    label[2] = classes
    names.append("rare")
    words = ["mug", "vase", "lamp", "bowl", "oak", "glass", "classic", "nordic"]
    title = [
        f"{words[k % len(words)] if rng.random() < 0.5 else 'item'} {rng.choice(words)} {i}"
        for i, k in enumerate(label)
    ]
    ids = [f"r{i:04d}" for i in range(n)]
    table = {
        "id": ids,
        "title": title,
        "brand": [None if rng.random() < 0.1 else f"b{rng.integers(0, 5)}" for _ in range(n)],
        "price": np.where(rng.random(n) < 0.05, np.nan, rng.normal(10 + label, 2)).tolist(),
        "photo": [f"images/{i}.png" for i in range(n)],
        "label": [names[k] for k in label],
    }
    test_rows = np.arange(n) >= int(n * 0.7)
    test_rows[:3] = False
    for split, mask in (("train", ~test_rows), ("test", test_rows)):
        cols = {
            k: [v for v, m in zip(vals, mask) if m]
            for k, vals in table.items()
            if not (split == "test" and k == "label")
        }
        pq.write_table(
            pa.table({k: pa.array(v, pa.float64() if k == "price" else pa.string()) for k, v in cols.items()}),
            public / f"{split}.parquet",
        )
    card = {
        "task_id": task,
        "type": "classification",
        "track": "classification",
        "primary_metric": "macro_f1",
        "features": {"title": "text", "brand": "categorical", "price": "numeric", "photo": "image"},
        "classes": {"classes": sorted(set(table["label"]))},
        "text_template": "{title}",
        "tables": {"train": {"rows": int((~test_rows).sum())}, "test": {"rows": int(test_rows.sum())}},
    }
    (public / "card.json").write_text(json.dumps(card))
    rows = [("train" if not t else "test", i) for i, t in zip(ids, test_rows)]
    centres = rng.normal(size=(classes + 1, DIM))
    photo = _unit(centres[label] + 0.6 * rng.normal(size=(n, DIM)))
    missing = np.zeros(n, dtype=bool)
    missing[5] = True
    write_embedding(emb / "photo.parquet", rows, photo, missing)
    write_embedding(emb / "text.parquet", rows, _unit(rng.normal(size=(n, DIM))))
    return public, emb


def matching_release(root: Path, task: str = "toy_pairs", models: int = 40, seed: int = 0) -> tuple[Path, Path]:
    """Public release + embeddings of a matching task: same model up to colour and size."""
    rng = np.random.default_rng(seed)
    public, emb = root / "public" / task, root / "embeddings" / task
    public.mkdir(parents=True)
    left, right, design = [], [], rng.normal(size=(models, DIM))
    for m in range(models):
        family = m // 2  # siblings share a family name
        for side, rows in (("L", left), ("R", right)):
            colour, size = rng.choice(COLOURS), rng.choice(SIZES)
            title = f"Brand{family % 5} Model{family} {'Pro' if m % 2 else ''} {colour} {size}".replace("  ", " ")
            rows.append(
                {
                    "id": f"{side}{m:03d}",
                    "title": title if side == "L" else title.lower(),
                    "colour": colour if side == "L" else colour.upper(),
                    "size": size,
                    "price": float(20 + family + rng.normal(0, 0.5)),
                    "image": f"images/{side}{m}.png",
                    "_model": m,
                }
            )
    pairs = []
    for m in range(models):
        pairs.append((left[m]["id"], right[m]["id"], 1))
        sibling = m + 1 if m % 2 == 0 else m - 1
        pairs.append((left[m]["id"], right[sibling]["id"], 0))
    order = rng.permutation(len(pairs))
    pairs = [pairs[i] for i in order]
    cut = int(len(pairs) * 0.7)
    # keep whole left records on one side of the split
    test_left = {p[0] for p in pairs[cut:]}
    train = [p for p in pairs if p[0] not in test_left]
    test = [p for p in pairs if p[0] in test_left]
    for name, rows in (("left", left), ("right", right)):
        pq.write_table(
            pa.table(
                {
                    "id": pa.array([r["id"] for r in rows], pa.string()),
                    "title": pa.array([r["title"] for r in rows], pa.string()),
                    "colour": pa.array([r["colour"] for r in rows], pa.string()),
                    "size": pa.array([r["size"] for r in rows], pa.string()),
                    "price": pa.array([r["price"] for r in rows], pa.float64()),
                    "image": pa.array([r["image"] for r in rows], pa.string()),
                }
            ),
            public / f"{name}.parquet",
        )
    pq.write_table(
        pa.table(
            {
                "left_id": [p[0] for p in train],
                "right_id": [p[1] for p in train],
                "label": pa.array([p[2] for p in train], pa.int8()),
            }
        ),
        public / "train_pairs.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "pair_id": [f"p{i:04d}" for i in range(len(test))],
                "left_id": [p[0] for p in test],
                "right_id": [p[1] for p in test],
            }
        ),
        public / "test_pairs.parquet",
    )
    card = {
        "task_id": task,
        "type": "matching",
        "track": "matching",
        "primary_metric": "f1",
        "features": {
            "title": "text",
            "colour": "categorical",
            "size": "categorical",
            "price": "numeric",
            "image": "image",
        },
        "classes": {"classes": [0, 1]},
        "text_template": "{title}",
        "tables": {"train_pairs": {"rows": len(train)}, "test_pairs": {"rows": len(test)}},
    }
    (public / "card.json").write_text(json.dumps(card))
    for name, maker in (
        ("image", lambda r: design[r["_model"]] + 0.3 * rng.normal(size=DIM)),
        ("text", lambda r: rng.normal(size=DIM)),
    ):
        rows = [("left", r["id"]) for r in left] + [("right", r["id"]) for r in right]
        write_embedding(emb / f"{name}.parquet", rows, _unit(np.stack([maker(r) for r in left + right])))
    return public, emb
