"""Which ready stage the flow starts first: train stages with the largest tuning budget."""

from __future__ import annotations

import json

from flows.pipeline import start_order
from tasks.core.schema import TRAIN_BUDGET_ROOT


def test_given_budgets_the_largest_train_starts_first_then_by_name(tmp_path):
    folder = tmp_path / TRAIN_BUDGET_ROOT
    folder.mkdir(parents=True)
    for task, seconds in {"small": 15, "big": 90, "mid": 40}.items():
        (folder / f"{task}.json").write_text(json.dumps({"seconds": seconds}))
    ready = ["evaluate", "train@small", "embed@big", "train@big", "train@mid", "train@unknown"]
    assert sorted(ready, key=lambda s: start_order(tmp_path, s)) == [
        "train@big",
        "train@mid",
        "train@small",
        "embed@big",
        "evaluate",
        "train@unknown",
    ]
