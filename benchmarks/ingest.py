"""Ingest throughput and memory, next to a plain pyarrow read + write of the same file.

    .venv/bin/python benchmarks/ingest.py [--rows 1000000]

Generates a classification contribution (CSV, id + text + categorical + 3 numeric + label),
then, each in a fresh process so peak memory is its own:
  * reference: pyarrow.csv.read_csv + Parquet write + CSV write (what any script does at least);
  * mmtc ingest: validation, typing by role, stratified split, hidden labels, twins, card.
Prints rows/s, the time ratio (ours / reference) and peak RSS of both.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_contribution(folder: Path, rows: int, seed: int = 0) -> Path:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    task = folder / "bench_items"
    task.mkdir(parents=True)
    words = np.array(
        ["red", "blue", "mug", "vase", "lamp", "classic", "nordic", "large", "small", "glass", "steel", "oak"]
    )
    titles = [" ".join(t) for t in words[rng.integers(0, len(words), size=(rows, 4))]]
    table = pa.table(
        {
            "SKU": [f"S{i:08d}" for i in rng.permutation(rows)],
            "Title": titles,
            "Brand": rng.choice([f"brand_{i}" for i in range(40)], size=rows),
            "Price": np.round(rng.lognormal(3, 0.5, rows), 2),
            "Weight": rng.integers(50, 3000, rows),
            "Height": np.round(rng.normal(20, 5, rows), 1),
            "Kind": rng.choice([f"type_{i}" for i in range(12)], size=rows),
        }
    )
    pacsv.write_csv(table, task / "items.csv")
    (task / "task.yaml").write_text(
        "id: bench_items\ntype: classification\ntrack: classification\nprimary_metric: macro_f1\ntitle: benchmark\n"
        "files:\n  data:\n    path: items.csv\n    columns: {SKU: id, Title: text, Brand: categorical, Price: numeric, Weight: numeric, Height: numeric, Kind: label}\n"
    )
    return task


def child(mode: str, task: Path, out: Path) -> None:
    start = time.perf_counter()
    if mode == "reference":
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        table = pacsv.read_csv(task / "items.csv")
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out / "items.parquet", compression="zstd")
        pacsv.write_csv(table, out / "items.csv")
    else:
        from tasks.core.params import load_params
        from tasks.ingest.stage import ingest_task

        ingest_task(task, out / "public", out / "private", load_params(ROOT / "params.yaml").ingest)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak_mib}))


def measure(mode: str, task: Path, out: Path) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(task), str(out)], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "TASK", "OUT"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        task = make_contribution(tmp / "contrib", args.rows)
        size_mib = (task / "items.csv").stat().st_size / 2**20
        reference = measure("reference", task, tmp / "ref")
        ours = measure("mmtc", task, tmp / "ours")
    print(f"ingest benchmark: {args.rows:,} rows, CSV of {size_mib:.0f} MiB (7 columns)")
    print(f"{'':28}{'seconds':>9}{'rows/s':>12}{'peak RSS MiB':>14}")
    for name, r in (("pyarrow read+write", reference), ("mmtc ingest", ours)):
        print(f"{name:28}{r['seconds']:9.2f}{args.rows / r['seconds']:12,.0f}{r['peak_mib']:14.0f}")
    print(
        f"ratio mmtc / pyarrow: time {ours['seconds'] / reference['seconds']:.2f}x, peak memory {ours['peak_mib'] / reference['peak_mib']:.2f}x"
    )


if __name__ == "__main__":
    main()
