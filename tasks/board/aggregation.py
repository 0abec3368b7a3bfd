"""Aggregation that can be checked: each track ranked under three rules side by side.

* mean:      the mean of the primary metric over the track's tasks (a missing task counts 0);
* mean-rank: the mean over tasks of the team's rank on the task (ties share the average rank);
* borda:     Borda count, per task one point per team ranked below (half a point per tie).

The rules compare the ranked teams (baselines take no rank) on the scores that rank the board
(public while open, private once closed). `leaderboard.aggregation` names the official rule:
its ranks are the board's `rank`; every team whose rank differs between the rules is flagged,
and Kendall's tau between the official rule and each other one is shown per track.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

RULES = ("mean", "mean-rank", "borda")
RULE_TEXT = {
    "mean": "mean of the primary metric",
    "mean-rank": "mean rank across tasks",
    "borda": "Borda count",
}
AGGREGATION_FIELDS = [
    ("mean_rank", pa.float64()),  # track rows of ranked teams: mean over tasks of the rank on the task
    ("borda", pa.float64()),  # ... Borda points
    ("rank_mean", pa.int32()),  # ... the rank under each rule
    ("rank_mean_rank", pa.int32()),
    ("rank_borda", pa.int32()),
    ("rank_differs", pa.bool_()),  # ... the rules do not all give the same rank
]
RANK_COLUMN = {"mean": "rank_mean", "mean-rank": "rank_mean_rank", "borda": "rank_borda"}

RULES_SQL = """
WITH settings_row AS (SELECT closed FROM settings LIMIT 1),
track_rows AS (
    SELECT b.track, b.team, b.submitted_at AS reached_at,
           CASE WHEN s.closed THEN b.private ELSE b.public END AS final, b.public
    FROM board AS b CROSS JOIN settings_row AS s
    WHERE b.level = 'track' AND NOT b.baseline
),
cells AS (                                    -- every ranked team x every task of its track
    SELECT b.track, b.team, b.task,
           coalesce(CASE WHEN s.closed THEN b.private ELSE b.public END, 0) AS final,
           coalesce(b.public, 0) AS public
    FROM board AS b CROSS JOIN settings_row AS s
    WHERE b.level = 'task' AND NOT b.baseline
),
task_ranks AS (                               -- rank on each task, ties sharing the average rank
    SELECT track, team, task,
           rank() OVER (PARTITION BY track, task ORDER BY round(final, 12) DESC)
             + (count(*) OVER (PARTITION BY track, task, round(final, 12)) - 1) / 2.0 AS task_rank,
           rank() OVER (PARTITION BY track, task ORDER BY round(public, 12) DESC)
             + (count(*) OVER (PARTITION BY track, task, round(public, 12)) - 1) / 2.0 AS public_task_rank,
           count(*) OVER (PARTITION BY track, task) AS n_teams
    FROM cells
),
per_team AS (
    SELECT track, team, avg(task_rank) AS mean_rank, sum(n_teams - task_rank) AS borda,
           avg(public_task_rank) AS public_mean_rank, sum(n_teams - public_task_rank) AS public_borda
    FROM task_ranks GROUP BY ALL
)
SELECT r.track, r.team, p.mean_rank, p.borda,
       row_number() OVER (PARTITION BY r.track ORDER BY r.final DESC, r.reached_at ASC, r.team ASC) AS rank_mean,
       row_number() OVER (PARTITION BY r.track ORDER BY p.mean_rank ASC, r.final DESC, r.reached_at ASC, r.team ASC)
         AS rank_mean_rank,
       row_number() OVER (PARTITION BY r.track ORDER BY p.borda DESC, r.final DESC, r.reached_at ASC, r.team ASC)
         AS rank_borda,
       row_number() OVER (PARTITION BY r.track ORDER BY r.public DESC, r.reached_at ASC, r.team ASC) AS public_mean,
       row_number() OVER (PARTITION BY r.track ORDER BY p.public_mean_rank ASC, r.public DESC, r.reached_at ASC, r.team ASC)
         AS public_mean_rank,
       row_number() OVER (PARTITION BY r.track ORDER BY p.public_borda DESC, r.public DESC, r.reached_at ASC, r.team ASC)
         AS public_borda
FROM track_rows AS r JOIN per_team AS p ON p.track = r.track AND p.team = r.team
"""


def apply_rules(board: pa.Table, official: str, closed: bool) -> pa.Table:
    """The board with AGGREGATION_FIELDS; under an official rule other than the mean, `rank`,
    `public_rank` and the display order follow that rule (ranked teams in its order, then the
    baselines by their mean: they are not compared by the rules)."""
    if official not in RULES:
        raise ValueError(f"leaderboard.aggregation '{official}' is not a rule; use one of {', '.join(RULES)}")
    con = duckdb.connect()
    try:
        con.register("board", board)
        con.register("settings", pa.table({"closed": [bool(closed)]}))
        rules = {(r[0], r[1]): r for r in con.sql(RULES_SQL).fetchall()}
    finally:
        con.close()
    rows = board.to_pylist()
    for r in rows:
        found = rules.get((r["track"], r["team"])) if r["level"] == "track" else None
        if found is None:
            r.update({name: None for name, _ in AGGREGATION_FIELDS})
            continue
        _, _, mean_rank, borda, by_mean, by_mean_rank, by_borda, *public = found
        r.update(
            mean_rank=float(mean_rank),
            borda=float(borda),
            rank_mean=int(by_mean),
            rank_mean_rank=int(by_mean_rank),
            rank_borda=int(by_borda),
            rank_differs=len({by_mean, by_mean_rank, by_borda}) > 1,
        )
        if official != "mean":
            r["public_rank"] = int(public[RULES.index(official)])
    if official != "mean":
        rows = _reordered(rows, RANK_COLUMN[official])
    schema = pa.schema(list(board.schema) + [pa.field(n, t) for n, t in AGGREGATION_FIELDS])
    return pa.Table.from_pylist(rows, schema=schema)


def _reordered(rows: list[dict], column: str) -> list[dict]:
    """Ranks and positions under another rule: a team's task rows follow its track row."""
    track_rows = {(r["track"], r["team"]): r for r in rows if r["level"] == "track"}
    for r in rows:
        t = track_rows[(r["track"], r["team"])]
        r["rank"] = t[column]
    order = {}
    for track in sorted({r["track"] for r in rows}):
        teams = [t for (tr, _), t in track_rows.items() if tr == track]
        ranked = sorted((t for t in teams if not t["baseline"]), key=lambda t: t[column])
        rest = sorted((t for t in teams if t["baseline"]), key=lambda t: t["position"])
        for i, t in enumerate(ranked + rest):
            order[(track, t["team"])] = i + 1
    for r in rows:
        r["position"] = order[(r["track"], r["team"])]
    return sorted(rows, key=lambda r: (r["track"], r["position"]))  # stable: a team's rows keep their order


def kendall_tau(board_rows: list[dict], track: str, a: str, b: str) -> float | None:
    """Kendall's tau between the ranks of two rules on a track (None below two ranked teams)."""
    pairs = [
        (r[RANK_COLUMN[a]], r[RANK_COLUMN[b]])
        for r in board_rows
        if r["track"] == track and r["level"] == "track" and r[RANK_COLUMN[a]] is not None
    ]
    n = len(pairs)
    if n < 2:
        return None
    score = 0
    for i in range(n):
        for j in range(i + 1, n):
            s = (pairs[i][0] - pairs[j][0]) * (pairs[i][1] - pairs[j][1])
            score += (s > 0) - (s < 0)
    return score / (n * (n - 1) / 2)  # the ranks are permutations: no ties, tau-a = tau-b
