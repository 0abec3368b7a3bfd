"""The Ladder (Blum and Hardt 2015): a public score is released only when it beats the team's
released best by more than a threshold, rounded; fixed and parameter-free."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tasks.board.probing import ladder
from tasks.board.ranking import TaskMeta
from tasks.core.errors import InputError
from tasks.scoring.evaluate import SCORES_SCHEMA
from tests.board_support import scored_board

TASK = TaskMeta("c1", "cls", "accuracy", "c1", "classification")


def rows(values: list[float]) -> pa.Table:
    out = []
    for i, v in enumerate(values):
        for split in ("public", "private"):
            out.append(
                {
                    "team": "a",
                    "submission_id": f"s{i}",
                    "submission": f"a/s{i}",
                    "name": f"s{i}",
                    "baseline": False,
                    "submitted_at": f"2026-11-0{i + 1}T00:00:00Z",
                    "task": "c1",
                    "track": "cls",
                    "split": split,
                    "metric": "accuracy",
                    "primary": True,
                    "value": v,
                    "file": "c1.csv",
                    "file_sha256": f"f{i}",
                    "labels_sha256": "1" * 64,
                    "scorer_version": "test",
                }
            )
    return pa.Table.from_pylist(out, schema=SCORES_SCHEMA)


def released(table: pa.Table) -> list[float]:
    return [r["value"] for r in table.to_pylist() if r["split"] == "public"]


def test_the_fixed_ladder_releases_only_improvements_beyond_the_step_rounded_to_it():
    out = ladder(rows([0.5012, 0.5051, 0.5234, 0.5301, 0.6049]), "fixed", 0.01)
    assert released(out) == pytest.approx([0.50, 0.50, 0.52, 0.53, 0.60])
    assert [r["value"] for r in out.to_pylist() if r["split"] == "private"] == [0.5012, 0.5051, 0.5234, 0.5301, 0.6049]
    assert ladder(rows([0.5]), "off", 0.01).equals(rows([0.5]))


def test_the_parameter_free_ladder_needs_a_paired_improvement_beyond_one_standard_error():
    n = 200
    wrong = {"f0": range(0, 100), "f1": range(50, 148), "f2": range(0, 60)}  # 0.50, 0.51 (other rows), 0.70
    counts = pa.Table.from_pylist(
        [
            {"task": "c1", "file_sha256": f, "split": "public", "grp": i, "truth": "x", "pred": "y", "n": 1}
            for f, items in wrong.items()
            for i in items
        ]
    )
    groups = pa.Table.from_pylist([{"task": "c1", "split": "public", "grp": i, "truth": "x", "n": 1} for i in range(n)])
    out = ladder(rows([0.50, 0.51, 0.70]), "parameter-free", 0.01, counts, groups, [TASK], reps=200, seed=0)
    assert released(out) == pytest.approx([0.50, 0.50, 0.70]), "0.51 is within a standard error of 0.50: withheld"
    with pytest.raises(InputError, match="parameter-free needs"):
        ladder(rows([0.5]), "parameter-free", 0.01)


def test_under_the_ladder_the_open_board_shows_released_scores_and_no_public_intervals(tmp_path):
    result = scored_board(tmp_path, ladder="fixed", ladder_step=0.25)
    tasks = [r for r in result.board.to_pylist() if r["level"] == "task" and not r["missing"]]
    assert all(abs(r["public"] / 0.25 - round(r["public"] / 0.25)) < 1e-9 for r in tasks), [r["public"] for r in tasks]
    assert all(r["public_lo"] is None for r in result.board.to_pylist())
    assert "No intervals on this board" in (tmp_path / "leaderboard" / "latest.md").read_text()
