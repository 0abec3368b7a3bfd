"""The cost of refusing hostile submission files, next to a sound file and to a plain pyarrow read.

    .venv/bin/python benchmarks/submission_bombs.py [--no-reference]

Each bomb of the hostile corpus (tests/corpus/submissions/): a 312 KB Parquet file of 40 million
repeated rows, a Parquet file whose 12 rows unpack to 72 MB, a CSV with one 20 MB field, a CSV
header of 2 MB, a CSV of 5,000 repeated rows; and a sound file of the same task as the floor.
Each is validated by `validate_file` (what `mmtc submit` runs) in a fresh process; prints the
outcome, seconds and peak RSS over the process's baseline after imports, and beside it what a
plain `pyarrow.parquet.read_table` / `pyarrow.csv.read_csv` (block size raised to fit the row)
of the same file costs: the reading our checks avoid.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CORPUS = ROOT / "tests" / "corpus" / "submissions"
BOMBS = ["parquet_row_bomb", "parquet_unpack_bomb", "csv_huge_field", "csv_huge_header", "csv_row_flood"]

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
import pyarrow as pa, pyarrow.csv as pacsv, pyarrow.parquet as pq
from tasks.submissions.validate import FileProblems, load_contracts, validate_file
from tasks.core.errors import InputError
contracts = load_contracts(Path({release!r}) / "public", ["shop_kind", "same_item"])
path, mode = Path({path!r}), {mode!r}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
outcome = "accepted"
if mode == "ours":
    try:
        validate_file(path, contracts[path.stem], max_mb=50)
    except (InputError, FileProblems) as exc:
        outcome = "refused: " + str(exc)[:90]
else:
    try:
        if path.suffix == ".parquet":
            outcome = f"read {{pq.read_table(path).num_rows:,}} rows"
        else:
            t = pacsv.read_csv(path, read_options=pacsv.ReadOptions(block_size=64 << 20))
            outcome = f"read {{t.num_rows:,}} rows"
    except pa.ArrowInvalid as exc:
        outcome = "pyarrow error: " + str(exc)[:60]
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"outcome": outcome, "seconds": seconds, "peak_mb": (peak - before) / 1024}}))
"""


def materialize(case: str, tmp: Path) -> Path:
    expect = json.loads((CORPUS / case / "expect.json").read_text())
    for name, recipe in expect.get("big", {}).items():
        path = tmp / name
        with open(path, "wb") as f:
            f.write(recipe["prefix"].encode())
            f.write(recipe["fill"].encode() * (recipe["bytes"] // len(recipe["fill"])))
            f.write(recipe["suffix"].encode())
        return path
    return next((CORPUS / case / "files").iterdir())


def measure(path: Path, mode: str) -> dict:
    code = CHILD.format(root=str(ROOT), release=str(CORPUS / "_release"), path=str(path), mode=mode)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-reference", action="store_true", help="skip the plain pyarrow reads")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sound = Path(tmp) / "sound" / "shop_kind.csv"
        sound.parent.mkdir()
        from tests.corpus.make_submissions import IDS, TRUTH

        sound.write_text("id,label\n" + "".join(f"{i},{c}\n" for i, c in zip(IDS, TRUTH)))
        rows = [("sound file (floor)", sound)]
        for case in BOMBS:
            folder = Path(tmp) / case
            folder.mkdir()
            rows.append((case, materialize(case, folder)))
        print(
            f"{'case':22} {'size':>9} {'ours s':>8} {'ours MB':>8} {'plain s':>8} {'plain MB':>9} {'s ratio':>8}  outcome"
        )
        for name, path in rows:
            ours = measure(path, "ours")
            ref = None if args.no_reference else measure(path, "plain")
            size = path.stat().st_size
            ratio = f"{ours['seconds'] / ref['seconds']:.4f}" if ref and ref["seconds"] else "-"
            print(
                f"{name:22} {size / 1024:>7.0f}KB {ours['seconds']:>8.3f} {ours['peak_mb']:>8.1f} "
                f"{ref['seconds'] if ref else float('nan'):>8.3f} {ref['peak_mb'] if ref else float('nan'):>9.1f} "
                f"{ratio:>8}  {ours['outcome']}" + (f"  | plain: {ref['outcome'][:40]}" if ref else "")
            )


if __name__ == "__main__":
    main()
