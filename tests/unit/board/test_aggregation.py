"""The track ranking under the mean, mean rank and Borda count: a board where they disagree,
the official rule as a param, and Kendall's tau against scipy."""

from __future__ import annotations

import itertools

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import kendalltau

from tasks.board.aggregation import apply_rules, kendall_tau
from tasks.board.ranking import TaskMeta, build_board
from tasks.scoring.evaluate import SCORES_SCHEMA

TASKS = [TaskMeta(f"c{i}", "cls", "macro_f1", f"task {i}", "classification") for i in range(3)]


def scores(values: dict[str, list[float]], baseline: str | None = None) -> pa.Table:
    rows = []
    for team, per_task in values.items():
        for t, v in zip(TASKS, per_task):
            for split in ("public", "private", "all"):
                rows.append(
                    {
                        "team": team,
                        "submission_id": "s1",
                        "submission": f"{team}/s1",
                        "name": "s1",
                        "baseline": team == baseline,
                        "submitted_at": "2026-11-02T00:00:00Z",
                        "task": t.task,
                        "track": "cls",
                        "split": split,
                        "metric": "macro_f1",
                        "primary": True,
                        "value": v,
                        "file": f"{t.task}.csv",
                        "file_sha256": "0" * 64,
                        "labels_sha256": "1" * 64,
                        "scorer_version": "test",
                    }
                )
    return pa.Table.from_pylist(rows, schema=SCORES_SCHEMA)


DISAGREE = {"a": [1.0, 0.0, 0.0], "b": [0.3, 0.3, 0.3], "c": [0.2, 0.2, 0.2], "base": [0.9, 0.9, 0.9]}


def track_rows(board: pa.Table) -> list[dict]:
    return [r for r in board.to_pylist() if r["level"] == "track"]


def test_the_rules_disagree_and_the_teams_are_flagged():
    board = apply_rules(build_board(scores(DISAGREE, "base"), TASKS, {}, "best-public", False), "mean", False)
    rows = {r["team"]: r for r in track_rows(board)}
    assert {t: (r["rank_mean"], r["rank_mean_rank"], r["rank_borda"]) for t, r in rows.items() if t != "base"} == {
        "a": (1, 2, 2),
        "b": (2, 1, 1),
        "c": (3, 3, 3),
    }
    assert rows["a"]["mean_rank"] == pytest.approx(7 / 3) and rows["b"]["borda"] == 5.0
    assert [t for t, r in rows.items() if r["rank_differs"]] == ["a", "b"]
    assert rows["base"]["rank_mean"] is None, "baselines are not compared by the rules"
    assert [r["rank"] for r in track_rows(board)] == [None, 1, 2, 3], "the official rule is the mean"
    rows_list = board.to_pylist()
    assert kendall_tau(rows_list, "cls", "mean", "borda") == pytest.approx(1 / 3)
    assert kendall_tau(rows_list, "cls", "mean-rank", "borda") == 1.0


def test_an_official_rule_other_than_the_mean_ranks_and_orders_the_board():
    board = apply_rules(build_board(scores(DISAGREE, "base"), TASKS, {}, "best-public", False), "borda", False)
    order = [(r["team"], r["rank"], r["position"]) for r in track_rows(board)]
    assert order == [("b", 1, 1), ("a", 2, 2), ("c", 3, 3), ("base", None, 4)]
    rows = board.to_pylist()
    assert [r["team"] for r in rows] == [r["team"] for r in rows if r["level"] == "track" for _ in range(4)]
    assert all(r["rank"] == 1 for r in rows if r["team"] == "b"), "a team's task rows carry its rank"
    with pytest.raises(ValueError, match="leaderboard.aggregation"):
        apply_rules(board, "median", False)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.sampled_from([0.1, 0.4, 0.5, 0.9]), min_size=3, max_size=3), min_size=2, max_size=6))
def test_kendall_tau_matches_scipy(values):
    board = apply_rules(
        build_board(scores({f"t{i}": v for i, v in enumerate(values)}), TASKS, {}, "best-public", False), "mean", False
    )
    rows = board.to_pylist()
    for a, b in itertools.combinations(("mean", "mean-rank", "borda"), 2):
        ra = [r[f"rank_{a.replace('-', '_')}"] for r in track_rows(board)]
        rb = [r[f"rank_{b.replace('-', '_')}"] for r in track_rows(board)]
        assert kendall_tau(rows, "cls", a, b) == pytest.approx(kendalltau(ra, rb).statistic)
