"""Uncertainty on every number of the board: a paired bootstrap over the test items.

For each task and part of the test set (the public part while the challenge is open, the
private part too once it is closed) numpy draws one resampling plan: `reps` resamples of the
task's resampling groups, with replacement (a group is a test row for classification, a
connected set of pairs that share a record for matching). Every team's selected submission is
scored on the same resamples, so comparisons are paired. The scoring is DuckDB SQL over the
compact per-group counts the evaluate stage kept (results/bootstrap_counts.parquet and
results/bootstrap_groups.parquet), through the metric registry's SQL: no submission file is
read again.

From the same replicates: a percentile interval per task and team, per track the interval of
the team's mean and of its rank, and a paired test per adjacent pair of ranked teams (the
interval of the difference of their track means); teams not separated from their neighbour
share a tie group.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tasks.board.ranking import TaskMeta
from tasks.core.metrics import METRICS
from tasks.core.schema import PRIVATE, PUBLIC, TaskType

UNCERTAINTY_FIELDS = [
    ("public_lo", pa.float64()),  # interval of the public score (task rows) or the public track mean (track rows)
    ("public_hi", pa.float64()),
    ("private_lo", pa.float64()),  # ... of the private one, once the challenge is closed
    ("private_hi", pa.float64()),
    ("gap_lo", pa.float64()),  # ... of public - private, once closed
    ("gap_hi", pa.float64()),
    ("rank_lo", pa.int32()),  # track rows of ranked teams: the range of the rank over the resamples
    ("rank_hi", pa.int32()),
    ("tie_group", pa.int32()),  # track rows of ranked teams: 1 + separated adjacent pairs above the team
    ("separated_below", pa.bool_()),  # the paired test separates the team from the next ranked one
]


EPS = 1e-12  # track means closer than this are equal (ties in a resample; "not separated" below it)


def resample_indices(n_groups: int, reps: int, seed: int, task: str, split: str) -> np.ndarray:
    """The resampling plan of one task and part: `reps` x `n_groups` group positions drawn with
    replacement. The stream depends on the seed, the task and the part only, never on the teams."""
    salt = int(hashlib.sha256(f"{task}\0{split}".encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng([int(seed), salt])
    return rng.integers(0, n_groups, size=(reps, n_groups), dtype=np.int64)


def plan_table(groups: np.ndarray, reps: int, seed: int, task: str, split: str) -> pa.Table:
    """(rep, grp, w): how often each group is drawn in each resample (w > 0 rows only)."""
    n = len(groups)
    idx = resample_indices(n, reps, seed, task, split)
    flat = (idx + np.arange(reps, dtype=np.int64)[:, None] * n).ravel()
    counts = np.bincount(flat, minlength=reps * n)
    where = np.flatnonzero(counts)
    return pa.table(
        {
            "rep": pa.array((where // n).astype(np.int32)),
            "grp": pa.array(groups[where % n].astype(np.int32)),
            "w": pa.array(counts[where].astype(np.int32)),
        }
    )


def plan_matrix(n_groups: int, reps: int, seed: int, task: str, split: str) -> np.ndarray:
    """The plan as a reps x n_groups matrix of draw counts (float64: exact for counts, and BLAS-ready)."""
    idx = resample_indices(n_groups, reps, seed, task, split)
    flat = (idx + np.arange(reps, dtype=np.int64)[:, None] * n_groups).ravel()
    return np.bincount(flat, minlength=reps * n_groups).reshape(reps, n_groups).astype(np.float64)


TEAM_CHUNK = 256  # teams resampled at once: bounds the memory of the resampled counts


def resampled_counts(
    task_type: TaskType, plan: np.ndarray, grp_ids: np.ndarray, grp_truth: pa.Table, team_counts: pa.Table, n_teams: int
):
    """Per team and resample, the confusion counts of every class: the plan applied to the
    per-group counts (a product of the plan matrix with each count matrix, so the cost does not
    grow with the rows of the submissions). Yields tables (team, rep, tp, fp, fn), one row per
    class with any count, the rows the registry's SQL aggregates; team is a position in 0..n_teams-1."""
    n_groups, reps = len(grp_ids), plan.shape[0]
    truth_values = pa.concat_arrays(
        [grp_truth.column("truth").combine_chunks(), team_counts.column("truth").combine_chunks().cast(pa.string())]
    )
    preds = team_counts.column("pred").combine_chunks().cast(pa.string())
    classes = pc.unique(pa.concat_arrays([truth_values, preds.drop_null()])).sort()
    k = len(classes)

    def codes(values: pa.Array) -> np.ndarray:
        return pc.fill_null(pc.index_in(values, value_set=classes), -1).to_numpy(zero_copy_only=False).astype(np.int64)

    g_pos = np.searchsorted(grp_ids, grp_truth.column("grp").to_numpy())
    g_code = codes(grp_truth.column("truth").combine_chunks())
    support = np.bincount(g_pos * k + g_code, weights=grp_truth.column("n").to_numpy(), minlength=n_groups * k)
    s = plan @ support.reshape(n_groups, k)  # reps x classes: true rows per class in each resample
    c_grp = np.searchsorted(grp_ids, team_counts.column("grp").to_numpy())
    c_team = team_counts.column("team").to_numpy().astype(np.int64)
    c_truth = codes(team_counts.column("truth").combine_chunks().cast(pa.string()))
    c_pred = codes(preds)
    c_n = team_counts.column("n").to_numpy().astype(np.float64)
    matching = TaskType(task_type) is TaskType.matching
    names = classes.to_pylist()
    positive = names.index("1") if matching and "1" in names else -1  # -1: no true match anywhere
    for lo in range(0, n_teams, TEAM_CHUNK):
        width = min(TEAM_CHUNK, n_teams - lo)
        inside = (c_team >= lo) & (c_team < lo + width)
        g, t, n = c_grp[inside], c_team[inside] - lo, c_n[inside]
        if matching:  # one class, a match: the rows are predicted matches, true (tp) or not (fp)
            hit = c_truth[inside] == positive
            x_tp = np.bincount(g[hit] * width + t[hit], weights=n[hit], minlength=n_groups * width)
            x_fp = np.bincount(g[~hit] * width + t[~hit], weights=n[~hit], minlength=n_groups * width)
            tp = plan @ x_tp.reshape(n_groups, width)
            fp = plan @ x_fp.reshape(n_groups, width)
            fn = s[:, positive][:, None] - tp if positive >= 0 else np.zeros_like(tp)
            rep, team = np.indices((reps, width))
            yield _long(team.ravel() + lo, rep.ravel(), tp.ravel(), fp.ravel(), fn.ravel())
            continue
        # classification: wrong and missed rows move a count from tp to fn of the true class,
        # and (when predicted) to fp of the predicted class
        size = n_groups * width * k
        moved_truth = np.bincount((g * width + t) * k + c_truth[inside], weights=n, minlength=size)
        has = c_pred[inside] >= 0
        moved_pred = np.bincount((g[has] * width + t[has]) * k + c_pred[inside][has], weights=n[has], minlength=size)
        fn = (plan @ moved_truth.reshape(n_groups, width * k)).reshape(reps, width, k)
        fp = (plan @ moved_pred.reshape(n_groups, width * k)).reshape(reps, width, k)
        tp = s[:, None, :] - fn
        keep = (tp + fp + fn) > 0
        rep, team, _ = np.nonzero(keep)
        yield _long(team + lo, rep, tp[keep], fp[keep], fn[keep])


def _long(team, rep, tp, fp, fn) -> pa.Table:
    return pa.table(
        {
            "team": pa.array(np.asarray(team, np.int32)),
            "rep": pa.array(np.asarray(rep, np.int32)),
            "tp": pa.array(np.rint(tp).astype(np.int64)),
            "fp": pa.array(np.rint(fp).astype(np.int64)),
            "fn": pa.array(np.rint(fn).astype(np.int64)),
        }
    )


TRACK_REPS_SQL = """
WITH track_sums AS (
    SELECT track, team, split, rep, sum(value) AS total FROM replicates GROUP BY ALL
)
SELECT e.track, e.team, e.baseline, e.rank, s.split, CAST(r.rep AS INTEGER) AS rep,
       coalesce(t.total, 0) / k.n_tasks AS mean   -- a team's track mean per resample (a missing task: 0)
FROM entrants AS e
JOIN track_size AS k ON k.track = e.track
CROSS JOIN splits AS s
CROSS JOIN (SELECT range AS rep FROM range({reps})) AS r
LEFT JOIN track_sums AS t ON t.track = e.track AND t.team = e.team AND t.split = s.split AND t.rep = r.rep
"""

SUMMARY_SQL = """
WITH ranked AS (
    SELECT *, rank() OVER (PARTITION BY track, split, rep ORDER BY round(mean, 12) DESC) AS rep_rank
    FROM track_reps WHERE rank IS NOT NULL
)
SELECT 'track' AS level, track, team, CAST(NULL AS VARCHAR) AS task, split,
       quantile_cont(mean, {lo}) AS lo, quantile_cont(mean, {hi}) AS hi,
       CAST(NULL AS INTEGER) AS rank_lo, CAST(NULL AS INTEGER) AS rank_hi
FROM track_reps GROUP BY ALL
UNION ALL
SELECT 'rank', track, team, NULL, split, NULL, NULL,
       CAST(quantile_disc(rep_rank, {lo}) AS INTEGER), CAST(quantile_disc(rep_rank, {hi}) AS INTEGER)
FROM ranked GROUP BY ALL
UNION ALL
SELECT 'task', track, team, task, split, quantile_cont(value, {lo}), quantile_cont(value, {hi}), NULL, NULL
FROM replicates GROUP BY ALL
"""

GAP_SQL = """
SELECT 'gap' AS level, a.track, a.team, CAST(NULL AS VARCHAR) AS task, 'gap' AS split,
       quantile_cont(a.mean - b.mean, {lo}) AS lo, quantile_cont(a.mean - b.mean, {hi}) AS hi,
       CAST(NULL AS INTEGER) AS rank_lo, CAST(NULL AS INTEGER) AS rank_hi
FROM track_reps AS a JOIN track_reps AS b
  ON b.track = a.track AND b.team = a.team AND b.rep = a.rep AND a.split = 'public' AND b.split = 'private'
GROUP BY ALL
UNION ALL
SELECT 'task_gap', a.track, a.team, a.task, 'gap', quantile_cont(a.value - b.value, {lo}),
       quantile_cont(a.value - b.value, {hi}), NULL, NULL
FROM replicates AS a JOIN replicates AS b
  ON b.task = a.task AND b.team = a.team AND b.rep = a.rep AND a.split = 'public' AND b.split = 'private'
GROUP BY ALL
"""

PAIRS_SQL = """
WITH diffs AS (                               -- each ranked team minus the next one, per resample
    SELECT a.track, a.team AS upper, b.team AS lower, a.rank, a.mean - b.mean AS diff
    FROM track_reps AS a JOIN track_reps AS b
      ON b.track = a.track AND b.rank = a.rank + 1 AND b.rep = a.rep AND b.split = a.split
    WHERE a.split = '{split}'
)
SELECT track, upper, lower, rank, quantile_cont(diff, {lo}) AS lo, quantile_cont(diff, {hi}) AS hi,
       quantile_cont(diff, {lo}) > {eps} AS separated
FROM diffs GROUP BY ALL ORDER BY track, rank
"""


@dataclass
class Uncertainty:
    """What the bootstrap found: intervals keyed (level, track, team, task, split) -> (lo, hi), rank
    intervals, and per track the adjacent pairs of ranked teams with their paired test."""

    reps: int
    seed: int
    level: float
    splits: list[str]
    intervals: dict[tuple, tuple] = field(default_factory=dict)
    ranks: dict[tuple, tuple] = field(default_factory=dict)  # (track, team) -> (lo, hi) on the ranking split
    pairs: list[dict] = field(default_factory=list)  # track, upper, lower, rank, lo, hi, separated
    tie_groups: dict[tuple, int] = field(default_factory=dict)  # (track, team) -> group
    replicates: pa.Table | None = None  # (track, task, split, team, rep, value)

    def separated(self, track: str) -> tuple[int, int]:
        """(separated adjacent pairs, adjacent pairs) of a track."""
        pairs = [p for p in self.pairs if p["track"] == track]
        return sum(p["separated"] for p in pairs), len(pairs)


def bootstrap(
    entries: pa.Table,
    tasks: list[TaskMeta],
    counts: pa.Table,
    groups: pa.Table,
    splits: list[str],
    reps: int,
    seed: int,
    level: float = 0.95,
    rank_split: str | None = None,
) -> Uncertainty:
    """The paired bootstrap of a board.

    entries: (track, team, baseline, rank, task, file_sha256), one row per team and task it has a
        selected submission for (rank: the team's rank in the track, null for baselines);
    counts / groups: results/bootstrap_counts.parquet and results/bootstrap_groups.parquet;
    splits: the parts to resample (public; private too once closed); rank_split: the part that ranks."""
    rank_split = rank_split or splits[-1]
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    con = duckdb.connect()
    try:
        con.register("all_counts", counts)
        con.register("all_groups", groups)
        con.register("all_entries", entries)
        pieces = []
        for t in tasks:
            metric = METRICS[t.metric]
            if metric.sql is None:
                continue
            entrants = con.execute(
                "SELECT DISTINCT team FROM all_entries WHERE task = ? ORDER BY team", [t.task]
            ).fetchall()
            teams = [row[0] for row in entrants]
            if not teams:
                continue
            con.register(
                "entrants",
                pa.table({"team": pa.array(teams, pa.string()), "pos": pa.array(range(len(teams)), pa.int32())}),
            )
            for split in splits:
                grp_truth = con.sql(
                    f"SELECT grp, truth, n FROM all_groups WHERE task = {_lit(t.task)} AND split = {_lit(split)}"
                ).to_arrow_table()
                grp_ids = np.unique(np.asarray(grp_truth.column("grp").to_numpy(), dtype=np.int64))
                if len(grp_ids) == 0:
                    continue
                team_counts = con.sql(
                    "SELECT e.pos AS team, c.grp, c.truth, c.pred, c.n FROM all_entries AS a "
                    "JOIN entrants AS e ON e.team = a.team "
                    "JOIN all_counts AS c ON c.file_sha256 = a.file_sha256 AND c.task = a.task "
                    f"WHERE a.task = {_lit(t.task)} AND c.split = {_lit(split)}"
                ).to_arrow_table()
                plan = plan_matrix(len(grp_ids), reps, seed, t.task, split)
                parts = []
                for chunk in resampled_counts(TaskType(t.task_type), plan, grp_ids, grp_truth, team_counts, len(teams)):
                    con.register("class_counts", chunk)
                    parts.append(
                        con.sql(
                            f"SELECT team, rep, CAST(({metric.sql}) AS DOUBLE) AS value FROM class_counts GROUP BY team, rep"
                        ).to_arrow_table()
                    )
                    con.unregister("class_counts")
                values = pa.concat_tables(parts)
                names = pa.array(teams, pa.string())
                values = values.set_column(0, "team", pc.take(names, values.column("team")))
                n = values.num_rows
                pieces.append(
                    pa.table(
                        {
                            "track": pa.array([t.track] * n, pa.string()),
                            "task": pa.array([t.task] * n, pa.string()),
                            "split": pa.array([split] * n, pa.string()),
                            "team": values.column("team").cast(pa.string()),
                            "rep": values.column("rep").cast(pa.int32()),
                            "value": values.column("value").cast(pa.float64()),
                        }
                    )
                )
            con.unregister("entrants")
        schema = pa.schema(
            [
                ("track", pa.string()),
                ("task", pa.string()),
                ("split", pa.string()),
                ("team", pa.string()),
                ("rep", pa.int32()),
                ("value", pa.float64()),
            ]
        )
        replicates = pa.concat_tables(pieces).cast(schema) if pieces else schema.empty_table()
        out = Uncertainty(reps, seed, level, list(splits), replicates=replicates)
        if replicates.num_rows == 0:
            return out
        con.register("replicates", replicates)
        track_entrants = con.sql(
            "SELECT DISTINCT track, team, baseline, rank FROM all_entries ORDER BY track, team"
        ).to_arrow_table()
        con.register("entrants", track_entrants)
        sizes: dict[str, int] = {}
        for t in tasks:
            sizes[t.track] = sizes.get(t.track, 0) + 1
        con.register(
            "track_size",
            pa.table({"track": list(sizes), "n_tasks": pa.array(list(sizes.values()), pa.int64())}),
        )
        con.register("splits", pa.table({"split": pa.array(splits, pa.string())}))
        con.execute(f"CREATE TEMP TABLE track_reps AS {TRACK_REPS_SQL.format(reps=int(reps))}")
        summary = SUMMARY_SQL + ("UNION ALL\n" + GAP_SQL if PUBLIC in splits and PRIVATE in splits else "")
        for level_, track, team, task, split, lo, hi, rank_lo, rank_hi in con.sql(
            summary.format(lo=repr(lo_q), hi=repr(hi_q))
        ).fetchall():
            if level_ == "rank":
                if split == rank_split:
                    out.ranks[(track, team)] = (rank_lo, rank_hi)
            else:
                out.intervals[("track" if level_ in ("track", "gap") else "task", track, team, task, split)] = (lo, hi)
        for track, upper, lower, rank, lo, hi, separated in con.sql(
            PAIRS_SQL.format(split=rank_split, lo=repr(lo_q), hi=repr(hi_q), eps=repr(EPS))
        ).fetchall():
            out.pairs.append(
                {
                    "track": track,
                    "upper": upper,
                    "lower": lower,
                    "rank": rank,
                    "lo": lo,
                    "hi": hi,
                    "separated": bool(separated),
                }
            )
    finally:
        con.close()
    out.tie_groups = tie_groups(track_entrants.to_pylist(), out.pairs)
    return out


def _lit(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def tie_groups(entrants: list[dict], pairs: list[dict]) -> dict[tuple, int]:
    """Ranked teams in rank order; a new group starts below every separated adjacent pair."""
    separated = {(p["track"], p["upper"]) for p in pairs if p["separated"]}
    groups = {}
    for track in sorted({e["track"] for e in entrants}):
        ranked = sorted((e for e in entrants if e["track"] == track and e["rank"] is not None), key=lambda e: e["rank"])
        group = 1
        for e in ranked:
            groups[(track, e["team"])] = group
            if (track, e["team"]) in separated:
                group += 1
    return groups


def entries_of(board: pa.Table, scores: pa.Table) -> pa.Table:
    """The board's selected submission per team and task, with the content hash of its file:
    (track, team, baseline, rank, task, file_sha256). Follows whatever the ranking selected."""
    files = {
        (r["team"], r["submission_id"], r["task"]): r["file_sha256"]
        for r in scores.select(["team", "submission_id", "task", "file_sha256"]).to_pylist()
    }
    rows = board.to_pylist()
    rank = {(r["track"], r["team"]): r["rank"] for r in rows if r["level"] == "track"}
    out = [
        {
            "track": r["track"],
            "team": r["team"],
            "baseline": r["baseline"],
            "rank": rank[(r["track"], r["team"])],
            "task": r["task"],
            "file_sha256": files[(r["team"], r["submission_id"], r["task"])],
        }
        for r in rows
        if r["level"] == "task" and r["submission_id"] is not None
    ]
    schema = pa.schema(
        [
            ("track", pa.string()),
            ("team", pa.string()),
            ("baseline", pa.bool_()),
            ("rank", pa.int32()),
            ("task", pa.string()),
            ("file_sha256", pa.string()),
        ]
    )
    return pa.Table.from_pylist(out, schema=schema)


def attach(board: pa.Table, u: Uncertainty | None, closed: bool) -> pa.Table:
    """The board with the UNCERTAINTY_FIELDS columns (all null without a bootstrap)."""
    rows = board.to_pylist()
    columns: dict[str, list] = {name: [] for name, _ in UNCERTAINTY_FIELDS}
    separated = {(p["track"], p["upper"]): p["separated"] for p in u.pairs} if u else {}
    for r in rows:
        key_level = "track" if r["level"] == "track" else "task"
        task = None if r["level"] == "track" else r["task"]

        def iv(split: str) -> tuple:
            if u is None or (r["level"] == "task" and r["missing"]):
                return (None, None)
            return u.intervals.get((key_level, r["track"], r["team"], task, split), (None, None))

        pub, priv, gap = iv(PUBLIC), iv(PRIVATE) if closed else (None, None), iv("gap") if closed else (None, None)
        rank = u.ranks.get((r["track"], r["team"]), (None, None)) if u and r["level"] == "track" else (None, None)
        for name, value in zip(
            ("public_lo", "public_hi", "private_lo", "private_hi", "gap_lo", "gap_hi", "rank_lo", "rank_hi"),
            (*pub, *priv, *gap, *rank),
        ):
            columns[name].append(value)
        is_ranked_track_row = u is not None and r["level"] == "track" and r["rank"] is not None
        columns["tie_group"].append(
            u.tie_groups.get((r["track"], r["team"])) if u is not None and is_ranked_track_row else None
        )
        columns["separated_below"].append(separated.get((r["track"], r["team"])) if is_ranked_track_row else None)
    for name, type_ in UNCERTAINTY_FIELDS:
        board = board.append_column(pa.field(name, type_), pa.array(columns[name], type_))
    return board
