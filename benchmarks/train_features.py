"""Feature building's share of a train stage, on a generated 6,000-row text classification task.

    .venv/bin/python benchmarks/train_features.py [--rows 6000] [--classes 12] [--words 60]
                                                 [--profile] [--stage] [--budget-s 60]

A real task added with `mmtc add-task` (6,000 rows of product reviews, one long text column)
spent 258 s of a 428 s train stage building features. This script writes a release of the
same shape (review-like text drawn from a Zipf vocabulary with class-specific words, a
categorical and a numeric column, a 512-dim text embedding) into a scratch folder and prints:
  * the seconds of each part of feature building (the text model, bag of words, PCA...);
  * with --profile, the top of cProfile's cumulative listing;
  * with --stage, the whole train stage under a tuning budget (--budget-s), and the share of
    its time that feature building took (the target: a small share).
Everything runs in one process, side by side, so the ratios hold on a busy machine.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.core.params import load_params  # noqa: E402
from tasks.train import features as feature_module  # noqa: E402
from tasks.train.features import build_features, load_embeddings, load_release  # noqa: E402
from tasks.train.stage import train_task  # noqa: E402

EMBED_DIM = 512


def write_release(root: Path, task: str, rows: int, classes: int, words: int, seed: int = 0) -> None:
    """A review-like classification release and its text embedding, following tasks/core/schema.py."""
    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"w{k}" for k in range(20_000)])
    zipf = 1.0 / np.arange(1, len(vocabulary) + 1)
    zipf /= zipf.sum()
    cue = {c: rng.choice(len(vocabulary) // 2, 40, replace=False) + len(vocabulary) // 2 for c in range(classes)}
    label = rng.choice(classes, rows, p=np.r_[np.full(classes - 2, 1.0), 0.3, 0.15] / (classes - 2 + 0.45))
    texts = []
    for c in label:
        n = max(5, int(rng.normal(words, words / 3)))
        picks = rng.choice(len(vocabulary), n, p=zipf)
        hints = rng.random(n) < 0.06
        picks[hints] = rng.choice(cue[c], int(hints.sum()))
        texts.append(" ".join(vocabulary[picks]))
    ids = [f"r{i:05d}" for i in range(rows)]
    score = np.clip(np.round(rng.normal(3 + (label % 3) * 0.5, 1.0)), 1, 5)
    product = [f"p{rng.integers(0, 300)}" for _ in range(rows)]
    is_test = rng.random(rows) < 0.2
    public = root / "public" / task
    public.mkdir(parents=True)
    for split, mask in (("train", ~is_test), ("test", is_test)):
        cols = {
            "id": pa.array([i for i, m in zip(ids, mask) if m], pa.string()),
            "review": pa.array([t for t, m in zip(texts, mask) if m], pa.string()),
            "product": pa.array([p for p, m in zip(product, mask) if m], pa.string()),
            "score": pa.array(score[mask], pa.float64()),
        }
        if split == "train":
            cols["label"] = pa.array([f"class_{c:02d}" for c in label[mask]], pa.string())
        pq.write_table(pa.table(cols), public / f"{split}.parquet")
    card = {
        "task_id": task,
        "type": "classification",
        "track": "classification",
        "primary_metric": "macro_f1",
        "features": {"review": "text", "product": "categorical", "score": "numeric"},
        "classes": {"classes": sorted({f"class_{c:02d}" for c in label})},
    }
    (public / "card.json").write_text(json.dumps(card))
    emb = root / "embeddings" / task
    emb.mkdir(parents=True)
    vectors = rng.normal(size=(rows, EMBED_DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    table = ["test" if t else "train" for t in is_test]
    pq.write_table(
        pa.table(
            {
                "table": pa.array(table, pa.string()),
                "id": pa.array(ids, pa.string()),
                "vector": pa.array(list(vectors), pa.list_(pa.float32())),
                "missing": pa.array(np.zeros(rows, bool), pa.bool_()),
            }
        ),
        emb / "text.parquet",
    )
    (emb / "meta.json").write_text(json.dumps({"files": {"text.parquet": {}}}))


class PartTimer:
    """Wraps module functions of tasks.train.features to add up the seconds spent in each."""

    def __init__(self, names: list[str]):
        self.seconds = dict.fromkeys(names, 0.0)
        for name in names:
            fn = getattr(feature_module, name)
            setattr(feature_module, name, self._wrap(name, fn))

    def _wrap(self, name, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start

        return timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=6000)
    ap.add_argument("--classes", type=int, default=12)
    ap.add_argument("--words", type=int, default=60, help="mean words per review")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--profile", action="store_true", help="print cProfile's top functions of feature building")
    ap.add_argument("--stage", action="store_true", help="also run the whole train stage and print the share")
    ap.add_argument("--budget-s", type=float, default=60.0, help="tuning budget of that train stage")
    args = ap.parse_args()
    params = load_params(args.params).train
    task = "generated_reviews"
    with tempfile.TemporaryDirectory(prefix="mmtc-train-features-") as tmp:
        root = Path(tmp)
        write_release(root, task, args.rows, args.classes, args.words)
        release = load_release(root / "public" / task)
        embeddings = load_embeddings(root / "embeddings" / task, release)
        parts = [
            n for n in ("text_model_probabilities", "bow_vocabulary", "_bow", "_reduce") if hasattr(feature_module, n)
        ]
        timer = PartTimer(parts)
        profiler = cProfile.Profile() if args.profile else None
        start = time.perf_counter()
        if profiler:
            profiler.enable()
        fs = build_features(release, embeddings, params)
        if profiler:
            profiler.disable()
        total = time.perf_counter() - start
        print(f"{args.rows} rows, {args.classes} classes, ~{args.words} words per text: {len(fs.features)} features")
        print(f"feature building: {total:.1f} s")
        for name, s in timer.seconds.items():
            print(f"  {name:<26} {s:7.1f} s  ({s / total:.0%})")
        if profiler:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
            print(out.getvalue())
        if args.stage:
            stage_params = params.model_copy(update={"timeout_s": args.budget_s})
            if hasattr(stage_params, "budget"):
                stage_params = stage_params.model_copy(
                    update={"budget": stage_params.budget.model_copy(update={"task_s": args.budget_s})}
                )
            report = train_task(
                task,
                root / "public",
                root / "embeddings",
                root / "out" / "models",
                root / "out" / "metrics",
                root / "out" / "submissions",
                stage_params,
                "2026-11-01T00:00:00Z",
            )
            seconds = report.metrics["seconds"]
            print(report.summary())
            print(
                f"train stage: {seconds['total']:.1f} s, of which features {seconds['features']:.1f} s "
                f"({seconds['features'] / seconds['total']:.0%}), tuning {seconds['tuning']:.1f} s"
            )


if __name__ == "__main__":
    main()
