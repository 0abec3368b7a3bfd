"""The board's paired bootstrap next to scoring once, on the same submissions.

    .venv/bin/python benchmarks/bootstrap.py [--submissions 2500] [--teams 2500] [--reps 1000] [--results results]

Generates a release shaped like the demo challenge (benchmarks/scoring.py: its six tasks at the
demo's test-set sizes, matching pairs linked in small blocks) and --submissions stored
submissions over --teams teams (2,500 teams of one submission each is the bootstrap's worst
case: every submission is on the board), then measures in one run:

  * evaluate (cold): scoring every file once (tasks.scoring.evaluate.evaluate), which also
                     writes the per-group counts the bootstrap reads;
  * bootstrap:       the board's paired bootstrap (tasks.board.snapshots.run_bootstrap) with
                     --reps resamples of the public part, intervals, rank intervals and tie groups.

With --results (a results/ folder of a real run, e.g. the demo's) it also times the bootstrap of
that board. Prints bootstrap / scoring (target <= 2x). The generated files are removed at the end.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import scoring as scoring_bench  # noqa: E402

from tasks.board.ranking import build_board, read_evaluation, tasks_of  # noqa: E402
from tasks.board.snapshots import run_bootstrap  # noqa: E402
from tasks.core.params import BootstrapParams, EvaluateParams, LeaderboardParams  # noqa: E402
from tasks.core.schema import SCORES  # noqa: E402
from tasks.scoring.evaluate import evaluate  # noqa: E402


def time_bootstrap(results: Path, reps: int, closed: bool = False) -> tuple[float, int, dict]:
    evaluation = read_evaluation(results)
    tasks = tasks_of(evaluation)
    scores = pq.read_table(results / SCORES)
    params = LeaderboardParams(policy="best-public", bootstrap=BootstrapParams(reps=reps, seed=0))
    board = build_board(scores, tasks, evaluation.get("rejected", {}), params.policy, closed)
    clock = time.perf_counter()
    u = run_bootstrap(results, board, scores, tasks, params, closed)
    seconds = time.perf_counter() - clock
    teams = len({r["team"] for r in board.to_pylist()})
    separated = {t.track: u.separated(t.track) for t in tasks} if u else {}
    return seconds, teams, separated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submissions", type=int, default=2500, help="0: only the --results board")
    parser.add_argument("--teams", type=int, default=2500)
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--results", type=Path, default=None, help="also time the bootstrap of this results/ folder")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()

    if args.results is not None:
        seconds, teams, separated = time_bootstrap(args.results, args.reps)
        print(f"board of {args.results}: {teams} teams, {args.reps} reps: bootstrap {seconds:.2f}s")
        for track, (sep, pairs) in separated.items():
            print(f"  track {track}: {sep} of {pairs} adjacent pairs separated")

    if args.submissions == 0:
        return
    rows = sum(n for _, _, n in scoring_bench.DEMO_TASKS.values())
    scoring_bench.TEAMS = args.teams
    rng = np.random.default_rng(0)
    work = Path(tempfile.mkdtemp(prefix="mmtc-bootstrap-"))
    try:
        truth = scoring_bench.make_release(work, rows, rng)
        scoring_bench.make_submissions(work / "submissions", truth, args.submissions, rng, score_share=0.5)
        params = EvaluateParams(threads=args.threads, memory_limit="4GB")
        clock = time.perf_counter()
        evaluate(work / "submissions", work / "public", work / "private", list(truth), work / "results", params)
        scoring = time.perf_counter() - clock
        seconds, teams, separated = time_bootstrap(work / "results", args.reps)
        print(
            f"{args.submissions} submissions x {len(truth)} tasks ({rows} test rows each, {teams} teams on the board), "
            f"{args.reps} reps: scoring once {scoring:.2f}s, bootstrap {seconds:.2f}s, "
            f"bootstrap / scoring {seconds / scoring:.2f}x (target <= 2x)"
        )
        for track, (sep, pairs) in separated.items():
            print(f"  track {track}: {sep} of {pairs} adjacent pairs separated")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
