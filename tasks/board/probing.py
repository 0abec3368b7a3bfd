"""Probing resistance: what the published board lets a team learn about the hidden labels.

A public score printed to full precision lets a team count its exact true and false positives
and, submission after submission, read the hidden labels off the board. Every score the board
publishes (latest.* and the snapshots) is therefore rounded to `leaderboard.public_decimals`;
full precision stays in results/, which is never published. The optional Ladder releases a
public score only when it improves on the team's released best by more than a threshold.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tasks.board.bootstrap import bootstrap
from tasks.core.errors import InputError


def round_scores(board: pa.Table, decimals: int) -> pa.Table:
    """Every float column of the board rounded to `decimals` (half to even, as Python's round)."""
    for i, f in enumerate(board.schema):
        if pa.types.is_floating(f.type):
            rounded = pc.round(board.column(i), ndigits=int(decimals), round_mode="half_to_even")
            board = board.set_column(i, f, rounded)
    return board


# --- the Ladder (Blum and Hardt, ICML 2015) --------------------------------------------------------


def ladder(
    scores: pa.Table,
    mode: str,
    step: float,
    counts: pa.Table | None = None,
    groups: pa.Table | None = None,
    tasks: list | None = None,
    reps: int = 200,
    seed: int = 0,
) -> pa.Table:
    """The scores with every primary public value replaced by what the Ladder releases.

    Per team and task, submissions in time order: a submission's public score is released only
    when it beats the team's released best by more than a threshold, and then rounded; otherwise
    the released best stays (so the board's best-public pick is the submission that set it).
    `fixed`: the threshold and the rounding are `step`. `parameter-free`: the threshold is the
    standard error of the paired difference between the new submission and the released best
    (from a paired bootstrap of the public part: the evaluate stage's per-group counts), and the
    released score is rounded to 1/n, n the public part's size (Blum and Hardt's Algorithm 2)."""
    if mode == "off":
        return scores
    if mode == "parameter-free" and (counts is None or groups is None or tasks is None):
        raise InputError(
            problem="leaderboard.ladder: parameter-free needs the evaluate stage's per-group counts "
            "(results/bootstrap_counts.parquet, results/bootstrap_groups.parquet)",
            fix="rerun the evaluate stage (dvc repro evaluate), or set leaderboard.ladder: fixed",
        )
    rows = scores.to_pylist()
    public = [r for r in rows if r["primary"] and r["split"] == "public"]
    released: dict[int, float] = {}
    by_key: dict[tuple, list[dict]] = {}
    for r in public:
        by_key.setdefault((r["team"], r["task"]), []).append(r)
    sizes: dict[tuple, int] = {}
    if groups is not None:
        for g in groups.to_pylist():
            if g["split"] == "public":
                sizes[g["task"]] = sizes.get(g["task"], 0) + g["n"]
    meta = {t.task: t for t in tasks or []}
    for (_team, task), subs in sorted(by_key.items()):
        best_value, best_row = None, None
        for r in sorted(subs, key=lambda r: (r["submitted_at"], r["submission"])):
            value = r["value"]
            if mode == "fixed":
                threshold, grid = step, step
            else:
                threshold = 0.0 if best_row is None else _paired_se(r, best_row, meta[task], counts, groups, reps, seed)
                grid = 1.0 / max(1, sizes.get(task, 1))
            if best_value is None or value > best_value + threshold:
                best_value, best_row = round(round(value / grid) * grid, 12), r
            released[id(r)] = best_value
    for r in public:
        r["value"] = released[id(r)]
    return pa.Table.from_pylist(rows, schema=scores.schema)


def _paired_se(new: dict, best: dict, task, counts: pa.Table, groups: pa.Table, reps: int, seed: int) -> float:
    """The bootstrap standard error of metric(new) - metric(best) on the public part."""
    entries = pa.Table.from_pylist(
        [
            {
                "track": task.track,
                "team": "new",
                "baseline": False,
                "rank": 1,
                "task": task.task,
                "file_sha256": new["file_sha256"],
            },
            {
                "track": task.track,
                "team": "best",
                "baseline": False,
                "rank": 2,
                "task": task.task,
                "file_sha256": best["file_sha256"],
            },
        ]
    )
    u = bootstrap(entries, [task], counts, groups, ["public"], reps, seed)
    if u.replicates is None or u.replicates.num_rows == 0:
        return 0.0
    values = {(t, rep): v for t, rep, v in zip(*(u.replicates.column(c).to_pylist() for c in ("team", "rep", "value")))}
    diff = np.array([values[("new", i)] - values[("best", i)] for i in range(reps)])
    return float(diff.std(ddof=1)) if reps > 1 else 0.0
