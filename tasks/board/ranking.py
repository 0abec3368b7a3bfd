"""The ranking: per task each team's selected submission, per track the mean of the primary
metric, ranks per track. The SQL is `leaderboard.sql` beside this module."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from tasks.core.errors import InputError
from tasks.core.schema import EVALUATION_REPORT

SQL = Path(__file__).with_name("leaderboard.sql")

BOARD_SCHEMA = pa.schema(
    [
        ("track", pa.string()),
        ("position", pa.int32()),  # display order in the track, baselines included
        ("rank", pa.int32()),  # null for baselines; the private rank once the challenge is closed
        ("public_rank", pa.int32()),
        ("team", pa.string()),
        ("baseline", pa.bool_()),
        ("level", pa.string()),  # 'track': the team's mean over the track; 'task': one task
        ("task", pa.string()),
        ("metric", pa.string()),
        ("public", pa.float64()),  # track rows: mean with missing tasks as 0; task rows: null when missing
        ("private", pa.float64()),  # null until challenge.closed
        ("gap", pa.float64()),  # public - private, null until challenge.closed
        ("missing", pa.int32()),  # tasks without a submission (task rows: 0 or 1)
        ("submission_id", pa.string()),  # task rows: the selected submission
        ("submitted_at", pa.string()),  # task rows: its time; track rows: when the score was reached
        ("entries", pa.int32()),  # accepted submissions of the team
        ("rejected", pa.int32()),
    ]
)


@dataclass(frozen=True)
class TaskMeta:
    task: str
    track: str
    metric: str
    title: str
    task_type: str


def read_evaluation(results_root: Path) -> dict:
    path = Path(results_root) / EVALUATION_REPORT
    if not path.is_file():
        raise InputError(problem=f"{path} not found", fix="run the evaluate stage first (mmtc evaluate, or dvc repro)")
    return json.loads(path.read_text(encoding="utf-8"))


def tasks_of(evaluation: dict) -> list[TaskMeta]:
    return [
        TaskMeta(
            t,
            evaluation["tasks"][t]["track"],
            evaluation["tasks"][t]["primary_metric"],
            evaluation["tasks"][t]["title"],
            evaluation["tasks"][t]["type"],
        )
        for t in evaluation["task_order"]
    ]


def build_board(
    scores: pa.Table,
    tasks: list[TaskMeta],
    rejected: dict[str, int],
    policy: str,
    closed: bool,
    final_picks: dict[str, list[str]] | None = None,
) -> pa.Table:
    """The board as a table (BOARD_SCHEMA), in display order.

    `final_picks`: team -> the submission ids it marked final; once closed, only those count for
    that team (per task the best private score among them), the policy's pick for the others."""
    con = duckdb.connect()
    try:
        entries: dict[str, set] = {}
        for team, sub in zip(scores.column("team").to_pylist(), scores.column("submission").to_pylist()):
            entries.setdefault(team, set()).add(sub)
        teams = sorted(set(entries) | set(rejected))
        con.register("scores", scores)
        con.register(
            "tasks",
            pa.table(
                {
                    "task": [t.task for t in tasks],
                    "track": [t.track for t in tasks],
                    "metric": [t.metric for t in tasks],
                    "ord": pa.array(range(1, len(tasks) + 1), pa.int32()),
                }
            ),
        )
        con.register(
            "teams",
            pa.table(
                {
                    "team": pa.array(teams, pa.string()),
                    "entries": pa.array([len(entries.get(t, ())) for t in teams], pa.int64()),
                    "rejected": pa.array([rejected.get(t, 0) for t in teams], pa.int64()),
                }
            ),
        )
        con.register("settings", pa.table({"policy": [policy], "closed": [bool(closed)]}))
        picks = sorted((team, sid) for team, ids in (final_picks or {}).items() for sid in ids)
        con.register(
            "final_picks",
            pa.table(
                {
                    "team": pa.array([t for t, _ in picks], pa.string()),
                    "submission_id": pa.array([s for _, s in picks], pa.string()),
                }
            ),
        )
        board = con.sql(SQL.read_text(encoding="utf-8")).to_arrow_table()
    finally:
        con.close()
    return board.select(BOARD_SCHEMA.names).cast(BOARD_SCHEMA)
