"""Prefect's overhead over plain DVC, and what concurrent tasks buy, measured side by side.

    .venv/bin/python benchmarks/orchestration.py [--full]

On a fresh copy of this repository (the small test demo unless --full), each from a clean
state (no outputs, no dvc.lock, empty DVC cache and run cache):
  1. plain `dvc repro` of every stage                       (reference, full run)
  2. the challenge_pipeline flow, concurrency 1              (full run)
  3. the challenge_pipeline flow, concurrency 2              (full run)
then a no-op run of `dvc repro` next to a no-op run of the flow. Prints wall times and the
ratios flow / dvc and concurrency-2 / concurrency-1.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.conftest import copy_repo, shrink_params, tool_env  # noqa: E402

FLOW = "from flows.pipeline import challenge_pipeline; challenge_pipeline(repo='.')"


def clean(repo: Path) -> None:
    for path in (
        "dvc.lock",
        ".dvc/cache",
        ".dvc/tmp",
        "data",
        "contributions",
        "results",
        "leaderboard",
        "metrics",
        ".mmtc_cache",
    ):
        target = repo / path
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    for folder in (repo / "submissions").glob("*") if (repo / "submissions").is_dir() else []:
        if folder.is_dir():  # every team folder is a stage output; submissions/.gitignore stays
            shutil.rmtree(folder)


def timed(cmd: list[str], repo: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=repo, env=tool_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds


def set_concurrency(repo: Path, n: int) -> None:
    import yaml

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["orchestration"]["concurrency"] = n
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true", help="the real demo sizes (about 10 minutes per full run)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = copy_repo(Path(tmp))
        if not args.full:
            shrink_params(repo)
        times = {}
        clean(repo)
        times["dvc repro (full)"] = timed(["dvc", "repro"], repo)
        times["dvc repro (no-op)"] = timed(["dvc", "repro"], repo)
        for n in (1, 2):
            clean(repo)
            set_concurrency(repo, n)
            times[f"flow, concurrency {n} (full)"] = timed([sys.executable, "-c", FLOW], repo)
        times["flow (no-op)"] = timed([sys.executable, "-c", FLOW], repo)
    print(f"orchestration benchmark ({'full' if args.full else 'small'} demo, wall seconds)")
    for name, seconds in times.items():
        print(f"  {name:34}{seconds:8.1f}")
    print(
        f"flow / dvc, full run (concurrency 2): {times['flow, concurrency 2 (full)'] / times['dvc repro (full)']:.2f}x"
    )
    print(f"flow / dvc, no-op run:                {times['flow (no-op)'] / times['dvc repro (no-op)']:.2f}x")
    print(
        f"concurrency 2 / concurrency 1, full:  {times['flow, concurrency 2 (full)'] / times['flow, concurrency 1 (full)']:.2f}x"
    )


if __name__ == "__main__":
    main()
