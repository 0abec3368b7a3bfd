"""The private ranking and the teams' final selections: none, one, two; the open board ignores them."""

from __future__ import annotations

from tasks.board.ranking import build_board
from tests.unit.board.test_leaderboard import TASKS, board_rows, score_rows, table

ROWS = (
    score_rows("a", "s1", "2026-11-02T10:00:00Z", "c1", 0.90, 0.50)  # best public
    + score_rows("a", "s2", "2026-11-03T10:00:00Z", "c1", 0.70, 0.80)
    + score_rows("a", "s3", "2026-11-04T10:00:00Z", "c1", 0.60, 0.95)  # best private
    + score_rows("a", "s3", "2026-11-04T10:00:00Z", "m1", 0.60, 0.70)
    + score_rows("a", "s1", "2026-11-02T10:00:00Z", "m1", 0.65, 0.40)
    + score_rows("b", "t1", "2026-11-02T11:00:00Z", "c1", 0.80, 0.70)
)


def cell(picks, closed=True, team="a", task="c1"):
    board = build_board(table(ROWS), TASKS, {}, "best-public", closed=closed, final_picks=picks)
    return board_rows(board, "task")[(team, task)]


def test_a_team_that_selected_none_gets_the_policy_s_pick():
    assert cell(None)["submission_id"] == "s1" and cell({})["submission_id"] == "s1"
    assert cell({"b": ["t1"]})["submission_id"] == "s1", "another team's selection changes nothing for a"


def test_one_selected_submission_counts_alone_and_a_task_it_does_not_cover_is_missing():
    picked = cell({"a": ["s2"]})
    assert picked["submission_id"] == "s2" and picked["private"] == 0.80 and picked["public"] == 0.70
    uncovered = cell({"a": ["s2"]}, task="m1")
    assert uncovered["missing"] == 1 and uncovered["submission_id"] is None, "s2 has no m1 file"


def test_two_selected_the_best_private_among_them_counts_per_task():
    assert cell({"a": ["s1", "s2"]})["submission_id"] == "s2", "0.80 private beats s1's 0.50"
    assert cell({"a": ["s1", "s3"]})["submission_id"] == "s3"
    assert cell({"a": ["s1", "s3"]}, task="m1")["submission_id"] == "s3", "0.70 beats 0.40"
    track = board_rows(build_board(table(ROWS), TASKS, {}, "best-public", closed=True, final_picks={"a": ["s1", "s3"]}))
    assert track[("classification", "a")]["private"] == (0.95 + 0) / 2


def test_before_the_close_the_board_follows_the_policy_whatever_was_selected():
    assert cell({"a": ["s2", "s3"]}, closed=False)["submission_id"] == "s1"
    assert cell({"a": ["s2", "s3"]}, closed=False)["private"] is None
