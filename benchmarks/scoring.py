"""Scoring throughput: DuckDB SQL over all submissions at once, next to a pandas + sklearn loop
and a bare DuckDB scan of the same files.

    .venv/bin/python benchmarks/scoring.py [--submissions 1000] [--rows 100000] [--sample 20]

Generates a release shaped like the demo challenge (its six tasks, their types and class
counts, test sets resized so that one submission holds --rows rows in all) and --submissions
stored submissions (one Parquet file per task; matching files carry a full-precision score, the
costly case for average precision), then measures, in one run:

  * evaluate (cold):  `tasks.scoring.evaluate.evaluate` scoring everything: discovery, sha256 checks,
                      the SQL, and writing scores.parquet, the DuckDB file and the cache;
  * bare scan:        DuckDB reading every column of the same files (the floor);
  * pandas + sklearn: per submission, on a random --sample of the same submissions
                      (read each file, merge with the labels, sklearn metrics per split);
  * sort floor:       the bare scan plus one rank() per matching file over its scored rows:
                      the least that exact average precision can cost (it needs each file's
                      rows in score order), before any join with the labels;
  * evaluate (again): a re-evaluation with nothing new (everything from the cache).

--score-share 0 leaves the score column out (no average precision, on both sides).

Prints the per-submission ratio (pandas / DuckDB; target >= 50x) and scoring / scan (target
<= 5x), and checks that both loops give the same numbers. The files are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.core.files import sha256_file  # noqa: E402
from tasks.core.params import EvaluateParams  # noqa: E402
from tasks.core.schema import SUBMISSION_META, SubmissionRecord, canonical_name  # noqa: E402
from tasks.scoring.evaluate import _has_score, _layout, connect, evaluate  # noqa: E402

# The demo challenge: task -> (type, number of classes, test rows in the demo release of params.yaml)
DEMO_TASKS = {
    "car_class": ("classification", 22, 334),
    "fastfood_chain": ("classification", 8, 154),
    "product_type": ("classification", 8, 134),
    "person_link": ("matching", 2, 1900),
    "product_dedup": ("matching", 2, 365),
    "product_variants": ("matching", 2, 530),
}
TEAMS = 100


def task_sizes(rows: int) -> dict[str, int]:
    total = sum(n for _, _, n in DEMO_TASKS.values())
    sizes = {t: int(rows * n / total) for t, (_, _, n) in DEMO_TASKS.items()}
    sizes["person_link"] += rows - sum(sizes.values())
    return sizes


def make_release(root: Path, rows: int, rng: np.random.Generator) -> dict[str, dict]:
    truth = {}
    for task, (kind, k, _) in DEMO_TASKS.items():
        n = task_sizes(rows)[task]
        pub, priv = root / "public" / task, root / "private" / task
        pub.mkdir(parents=True)
        priv.mkdir(parents=True)
        key = "id" if kind == "classification" else "pair_id"
        keys = np.array([f"{task[:3]}-{i:07d}" for i in range(n)], dtype=object)
        if kind == "classification":
            classes = np.array([f"class {c:02d}" for c in range(k)], dtype=object)
            labels = classes[np.minimum(rng.geometric(0.25, n) - 1, k - 1)]  # skewed, rare classes
            label_array = pa.array(labels, pa.string())
        else:
            classes = None
            labels = (rng.random(n) < 0.25).astype(np.int8)
            label_array = pa.array(labels, pa.int8())
        split = np.where(rng.random(n) < 0.5, "public", "private")
        release = {key: pa.array(keys, pa.string())}
        if kind == "matching":  # records linked in small blocks: the bootstrap resamples the blocks
            block = np.arange(n) // 4
            release |= {"left_id": pa.array(block.astype(str)), "right_id": pa.array((np.arange(n) // 2).astype(str))}
        pq.write_table(
            pa.table(release),
            pub / ("test.parquet" if kind == "classification" else "test_pairs.parquet"),
        )
        pq.write_table(
            pa.table({key: pa.array(keys, pa.string()), "label": label_array, "split": split}),
            priv / "test_labels.parquet",
        )
        card = {
            "task_id": task,
            "type": kind,
            "track": kind,
            "primary_metric": "macro_f1" if kind == "classification" else "f1",
            "title": task,
            "classes": {"classes": list(classes) if classes is not None else [0, 1]},
        }
        (pub / "card.json").write_text(json.dumps(card))
        truth[task] = {"kind": kind, "key": key, "keys": keys, "labels": labels, "classes": classes}
    return truth


def make_submissions(root: Path, truth: dict, count: int, rng: np.random.Generator, score_share: float) -> None:
    for i in range(count):
        with_score = rng.random() < score_share
        team = f"team-{i % TEAMS:03d}"
        skill = rng.uniform(0.3, 0.95)
        when = f"2026-11-{1 + i // 100:02d}T{(i % 100) // 5:02d}:{(i % 5) * 10:02d}:00Z"
        sid = f"{when[:4]}{when[5:7]}{when[8:10]}T{when[11:13]}{when[14:16]}00Z-{i:08x}"
        folder = root / team / sid
        folder.mkdir(parents=True)
        files, canonical = {}, {}
        for task, t in truth.items():
            n = len(t["keys"])
            right = rng.random(n) < skill
            if t["kind"] == "classification":
                guess = t["classes"][rng.integers(0, len(t["classes"]), n)]
                label = pa.array(np.where(right, t["labels"], guess), pa.string())
                table = pa.table({t["key"]: pa.array(t["keys"], pa.string()), "label": label})
            else:
                score = np.clip(
                    np.where(
                        t["labels"] == 1, rng.normal(0.5 + skill / 3, 0.2, n), rng.normal(0.5 - skill / 3, 0.2, n)
                    ),
                    0,
                    1,
                )
                table = pa.table(
                    {
                        t["key"]: pa.array(t["keys"], pa.string()),
                        "label": pa.array((score >= 0.5).astype(np.int8)),
                        "score": score,
                    }
                )
                if not with_score:
                    table = table.drop_columns(["score"])
            path = folder / f"{task}.parquet"
            pq.write_table(table, path, compression="zstd")
            files[path.name] = sha256_file(path)
            # the canonical twin submit() would write (already typed here): what evaluate reads
            os.link(path, folder / canonical_name(task))
            canonical[canonical_name(task)] = files[path.name]
        record = SubmissionRecord(
            team=team,
            name=f"sub-{i}",
            submission_id=sid,
            submitted_at=when,
            files=files,
            tasks=sorted(truth),
            canonical=canonical,
        )
        (folder / SUBMISSION_META).write_text(json.dumps(record.model_dump()))


def bare_scan(subs: Path, params: EvaluateParams, sort_scored: bool = False) -> float:
    """Every column of every file read and decoded once, per task and layout, with the same reader.

    sort_scored adds one sort of each matching file's scored rows: what any exact average
    precision costs at least (it needs every file's rows in score order), before any join with
    the labels. Files are numbered as evaluate numbers them, and the sort carries nothing but
    (file number, score)."""
    con = connect(params)
    groups: dict[str, dict[tuple, list[str]]] = {}  # task -> layout -> files, grouped as evaluate groups them
    for task in DEMO_TASKS:
        for p in sorted(subs.glob(f"*/*/{task}.parquet")):
            groups.setdefault(task, {}).setdefault(_layout(p), []).append(str(p))
    start = time.perf_counter()
    for task, (kind, _, _) in DEMO_TASKS.items():
        for layout, paths in groups[task].items():
            scan = f"read_parquet({paths!r}, filename = true)"
            con.sql(f"SELECT count(*), max(COLUMNS(*)) FROM {scan}").fetchall()
            if sort_scored and kind == "matching" and _has_score(layout):
                con.register("file_ids", pa.table({"path": paths, "file_id": pa.array(range(len(paths)), pa.int32())}))
                con.sql(
                    f"SELECT count(*), max(r) FROM (SELECT rank() OVER (PARTITION BY m.file_id ORDER BY s.score) AS r "
                    f"FROM {scan} AS s JOIN file_ids AS m ON m.path = s.filename WHERE s.score IS NOT NULL)"
                ).fetchall()
                con.unregister("file_ids")
    seconds = time.perf_counter() - start
    con.close()
    return seconds


def pandas_sklearn(folders: list[Path], private: Path) -> tuple[float, dict]:
    """The straightforward loop: per submission, per task, read, merge, sklearn metrics per split."""
    import pandas as pd
    from sklearn.metrics import accuracy_score, average_precision_score, f1_score, precision_score, recall_score

    labels = {task: pd.read_parquet(private / task / "test_labels.parquet") for task in DEMO_TASKS}
    results = {}
    start = time.perf_counter()
    for folder in folders:
        for task, (kind, _, _) in DEMO_TASKS.items():
            key = "id" if kind == "classification" else "pair_id"
            preds = pd.read_parquet(folder / f"{task}.parquet")
            merged = labels[task].merge(preds, on=key, how="left", suffixes=("", "_pred"))
            for split in ("public", "private", "all"):
                part = merged if split == "all" else merged[merged["split"] == split]
                y, p = part["label"], part["label_pred"]
                if kind == "classification":
                    results[(folder.name, task, split, "accuracy")] = accuracy_score(y, p)
                    results[(folder.name, task, split, "macro_f1")] = f1_score(y, p, average="macro", zero_division=0)
                else:
                    results[(folder.name, task, split, "precision")] = precision_score(y, p, zero_division=0)
                    results[(folder.name, task, split, "recall")] = recall_score(y, p, zero_division=0)
                    results[(folder.name, task, split, "f1")] = f1_score(y, p, zero_division=0)
                    if "score" in part:
                        results[(folder.name, task, split, "average_precision")] = average_precision_score(
                            y, part["score"]
                        )
    return (time.perf_counter() - start) / len(folders), results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of one submission, over all six tasks")
    parser.add_argument("--sample", type=int, default=20, help="submissions scored by the pandas + sklearn loop")
    parser.add_argument("--threads", type=int, default=0, help="DuckDB threads (0: all cores)")
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument("--workdir", type=Path, help="where to write the files (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument(
        "--score-share",
        type=float,
        default=1.0,
        help="share of submissions whose matching files carry a score (average precision)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    work = Path(tempfile.mkdtemp(prefix="mmtc-bench-scoring-", dir=args.workdir))
    params = EvaluateParams(threads=args.threads, memory_limit=args.memory_limit)
    try:
        t0 = time.perf_counter()
        truth = make_release(work / "release", args.rows, rng)
        subs = work / "submissions"
        make_submissions(subs, truth, args.submissions, rng, args.score_share)
        disk = sum(p.stat().st_size for p in subs.rglob("*.parquet"))
        print(
            f"generated {args.submissions} submissions x {len(DEMO_TASKS)} tasks, {args.rows:,} rows each "
            f"({args.submissions * args.rows:,} rows, {disk / 2**20:,.0f} MiB of Parquet) in {time.perf_counter() - t0:.1f}s"
        )
        print(f"rows per task: {task_sizes(args.rows)}")

        public, private = work / "release" / "public", work / "release" / "private"
        folders = sorted(p for p in subs.glob("*/*") if p.is_dir())
        sample = [
            folders[i]
            for i in sorted(
                np.random.default_rng(args.seed + 1).choice(len(folders), min(args.sample, len(folders)), replace=False)
            )
        ]

        # The machine may be shared: the loop runs right before and right after DuckDB, and the
        # faster of the two is compared (the conservative choice for the ratio).
        scan = bare_scan(subs, params)
        floor = bare_scan(subs, params, sort_scored=True) if args.score_share > 0 else scan
        per_pandas_before, reference = pandas_sklearn(sample, private)

        start = time.perf_counter()
        report = evaluate(subs, public, private, list(DEMO_TASKS), work / "results", params)
        cold = time.perf_counter() - start
        assert report.scored == args.submissions * len(DEMO_TASKS) and not report.invalid, report.summary()

        per_pandas_after, _ = pandas_sklearn(sample, private)
        per_pandas = min(per_pandas_before, per_pandas_after)

        start = time.perf_counter()
        again = evaluate(subs, public, private, list(DEMO_TASKS), work / "results", params)
        warm = time.perf_counter() - start
        assert again.scored == 0 and again.cached == args.submissions * len(DEMO_TASKS)

        scores = pq.read_table(work / "results" / "scores.parquet").to_pylist()
        ours = {(r["submission_id"], r["task"], r["split"], r["metric"]): r["value"] for r in scores}
        assert set(reference) <= set(ours)
        worst = max(abs(ours[k] - v) for k, v in reference.items())

        per_duck = cold / args.submissions
        per_sql = report.seconds["score"] / args.submissions
        print()
        print(
            f"DuckDB evaluate, all {args.submissions} submissions (cold):  {cold:8.2f} s   = {per_duck * 1000:7.2f} ms per submission"
        )
        print("    of which " + ", ".join(f"{k} {v:.2f} s" for k, v in report.seconds.items()))
        print(
            f"pandas + sklearn, {len(sample)} random submissions:          {per_pandas * len(sample):8.2f} s   = {per_pandas * 1000:7.2f} ms per submission"
            f"  (before / after DuckDB: {per_pandas_before * 1000:.0f} / {per_pandas_after * 1000:.0f} ms)"
        )
        print(f"bare DuckDB scan of the same files:                   {scan:8.2f} s")
        if args.score_share > 0:
            print(
                f"bare scan + one sort of every scored file:            {floor:8.2f} s   = {floor / args.submissions * 1000:7.2f} ms per submission"
                f"  (the least exact average precision costs; pandas / it: {per_pandas / (floor / args.submissions):.1f}x)"
            )
        print(f"re-evaluation with nothing new:                       {warm:8.2f} s")
        print()
        print(
            f"ratio per submission, pandas+sklearn / DuckDB evaluate: {per_pandas / per_duck:6.1f}x  (target >= 50x; SQL alone: {per_pandas / per_sql:.1f}x)"
        )
        print(
            f"scoring / bare scan:                                    {cold / scan:6.2f}x  (target <= 5x; SQL alone: {report.seconds['score'] / scan:.2f}x)"
        )
        print(f"largest difference to sklearn over {len(reference)} values: {worst:.2e}")
    finally:
        if args.keep:
            print(f"files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
