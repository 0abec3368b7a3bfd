"""The tuning budget per task: the challenge's total shared by rows x classes, never below the floor."""

from __future__ import annotations

import json

import pytest

from tasks.core.params import TrainBudget
from tasks.train.budget import TaskSize, read_budget, split_budget, write_budgets
from tests.synthetic import classification_release, matching_release


def test_given_tasks_of_different_sizes_then_shares_follow_rows_times_classes():
    sizes = [TaskSize("big", 1000, 20), TaskSize("mid", 1000, 10), TaskSize("tiny", 50, 2)]
    seconds = split_budget(sizes, TrainBudget(challenge_s=300, task_floor_s=20))
    assert seconds["tiny"] == 20  # 100 / 30100 of 300 s is below the floor
    assert seconds["big"] == round(280 * 2 / 3) and seconds["mid"] == round(280 / 3)
    assert sum(seconds.values()) == pytest.approx(300, abs=1)


def test_given_floors_above_the_total_then_every_task_gets_the_floor():
    sizes = [TaskSize(f"t{k}", 100 * (k + 1), 2) for k in range(4)]
    assert set(split_budget(sizes, TrainBudget(challenge_s=30, task_floor_s=10)).values()) == {10}


def test_the_stage_writes_one_file_per_task_that_train_reads(tmp_path):
    classification_release(tmp_path)
    matching_release(tmp_path)
    written = write_budgets(
        tmp_path / "public", ["toy_items", "toy_pairs"], TrainBudget(challenge_s=100, task_floor_s=5), tmp_path / "b"
    )
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["toy_items.json", "toy_pairs.json"]
    items = json.loads((tmp_path / "b" / "toy_items.json").read_text())
    assert items["classes"] == 5 and items["rows"] == written["toy_items"]["rows"] > 0
    assert read_budget(tmp_path / "b", "toy_items") == items["seconds"]
    assert written["toy_items"]["seconds"] + written["toy_pairs"]["seconds"] == pytest.approx(100, abs=1)
    assert read_budget(tmp_path / "b", "absent") is None
    # a task whose ingest failed (no release yet) is left out; the others still get their share
    again = write_budgets(
        tmp_path / "public", ["toy_items", "broken"], TrainBudget(challenge_s=100, task_floor_s=5), tmp_path / "c"
    )
    assert set(again) == {"toy_items"} and again["toy_items"]["seconds"] == 100
