"""Ingest throughput and memory, next to a plain pyarrow read + write of the same file; and
the cost of checking hostile images, next to a normal photo and to a plain Pillow decode.

    .venv/bin/python benchmarks/ingest.py [--rows 1000000]
    .venv/bin/python benchmarks/ingest.py --images

Rows: generates a classification contribution (CSV, id + text + categorical + 3 numeric + label),
then, each in a fresh process so peak memory is its own:
  * reference: pyarrow.csv.read_csv + Parquet write + CSV write (what any script does at least);
  * mmtc ingest: validation, typing by role, stratified split, hidden labels, twins, card.
Prints rows/s, the time ratio (ours / reference) and peak RSS of both.

Images: one small contribution per image case (a normal photo, a 20,000 x 20,000 PNG, JPEG and
GIF headers declaring 65,000 x 65,000 pixels, a PNG text bomb, a truncated photo...), each
validated by `mmtc validate-task`'s function in a fresh process; prints the outcome, seconds and
peak RSS over the process's baseline after imports (the whole check of a 4-row task: its
8x8 row is the floor), and beside it what a plain
`Image.open(path).load()` with Pillow's guard off costs (under a 6 GiB address-space limit).
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


# --- images ---------------------------------------------------------------------------------


def image_cases() -> dict[str, bytes]:
    from PIL import Image

    from tests.corpus.make_broken import encoded, gif_claiming, jpeg_claiming, noise, png_bomb, png_text_bomb

    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8))
    small = noise(512)
    jpeg = encoded(photo, "JPEG")
    return {
        "normal 8x8 PNG (the floor)": encoded(noise(8), "PNG"),
        "normal 512x512 PNG": encoded(small, "PNG"),
        "normal 4000x3000 JPEG": jpeg,
        "20000x20000 1-bit PNG": png_bomb(20_000),
        "JPEG header 65000x65000": jpeg_claiming(65_000, 65_000),
        "GIF header 65535x65535": gif_claiming(65_535, 65_535),
        "PNG with 8 MB zTXt": png_text_bomb(),
        "truncated 4000x3000 JPEG": jpeg[: len(jpeg) // 2],
        "HTML page named .png": b"<!DOCTYPE html><html><body>404 Not Found</body></html>",
    }


def image_task(folder: Path, data: bytes) -> Path:
    task = folder / "bench_image"
    (task / "img").mkdir(parents=True)
    (task / "img" / "x.png").write_bytes(data)
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(task / "img" / "ok.png")
    rows = ["SKU,Photo,Kind", "a,img/x.png,mug", "b,img/ok.png,mug", "c,img/ok.png,vase", "d,img/ok.png,vase"]
    (task / "items.csv").write_text("\n".join(rows) + "\n")
    (task / "task.yaml").write_text(
        "id: bench_image\ntype: classification\ntrack: classification\nprimary_metric: macro_f1\ntitle: benchmark\n"
        "files:\n  data:\n    path: items.csv\n    columns: {SKU: id, Photo: image, Kind: label}\n"
    )
    return task


def image_child(mode: str, task: Path) -> None:
    import resource as res

    from PIL import Image

    from tasks.core.errors import InputError, InputErrors
    from tasks.core.params import load_params
    from tasks.ingest.stage import validate_task

    params = load_params(ROOT / "params.yaml").ingest
    base_kib = res.getrusage(res.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if mode == "mmtc":
        try:
            validate_task(task, params)
            outcome = "accepted"
        except (InputError, InputErrors) as exc:
            outcome = "refused: " + str(exc).split("(img/x.png: ")[-1].split(")")[0]
    else:
        res.setrlimit(res.RLIMIT_AS, (6 << 30, 6 << 30))
        Image.MAX_IMAGE_PIXELS = None
        try:
            with Image.open(task / "img" / "x.png") as img:
                img.load()
                outcome = f"decoded {img.size[0]}x{img.size[1]} {img.mode}"
        except MemoryError:
            outcome = "MemoryError"
        except Exception as exc:  # what Pillow says is the point here
            outcome = f"{type(exc).__name__}"
    seconds = time.perf_counter() - start
    peak = (res.getrusage(res.RUSAGE_SELF).ru_maxrss - base_kib) / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "outcome": outcome}))


def measure_image(mode: str, task: Path) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--image-child", mode, str(task)], capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        return {"seconds": float("nan"), "peak_mib": float("nan"), "outcome": f"exit {result.returncode}"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def images_benchmark() -> None:
    print("image checks: mmtc ingest (validate_task) vs a plain Pillow decode, each in a fresh process")
    print(f"{'case':26}{'KiB':>9} | {'mmtc s':>7}{'+MiB':>7}  {'outcome':46} | {'Pillow s':>8}{'+MiB':>7}  outcome")
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, data) in enumerate(image_cases().items()):
            task = image_task(Path(tmp) / str(i), data)
            ours, plain = measure_image("mmtc", task), measure_image("pillow", task)
            print(
                f"{name:26}{len(data) / 1024:9.1f} | {ours['seconds']:7.2f}{ours['peak_mib']:7.0f}  {ours['outcome'][:46]:46}"
                f" | {plain['seconds']:8.2f}{plain['peak_mib']:7.0f}  {plain['outcome']}"
            )
    print("+MiB: peak RSS above the process's own after imports (ru_maxrss); times are noisy on a shared machine")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--images", action="store_true", help="the image-check benchmark instead of rows")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "TASK", "OUT"))
    parser.add_argument("--image-child", nargs=2, metavar=("MODE", "TASK"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    if args.image_child:
        image_child(args.image_child[0], Path(args.image_child[1]))
        return
    if args.images:
        images_benchmark()
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
