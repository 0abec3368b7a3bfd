"""The tuning time of each task: its share of the challenge's total, by rows x classes.

A multiclass CatBoost fit costs about rows x classes (one tree per class and round on every
row), so a task's study gets that share of `train.budget.challenge_s`, and never less than
`train.budget.task_floor_s`: the floors are taken first, and the rest is shared among the
tasks above them. The `train_budget` stage writes one small file per task,
data/train_budget/<task>.json, which only that task's train stage depends on: a task whose
share did not change does not retrain.

The shares are rounded to whole seconds so that a small change elsewhere (a re-ingested task
with a few more rows) leaves them as they are.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from tasks.core.errors import InputError
from tasks.core.files import staged_dir, write_json
from tasks.core.params import TrainBudget
from tasks.core.schema import CARD, TaskType

BUDGET_FILE = "{task}.json"


@dataclass(frozen=True)
class TaskSize:
    task: str
    rows: int  # train rows (classification) or train pairs (matching)
    classes: int

    @property
    def weight(self) -> int:
        return max(1, self.rows) * max(2, self.classes)


def task_size(public_dir: Path) -> TaskSize:
    """Rows and classes of a task's train part, from its card.json."""
    path = Path(public_dir) / CARD
    if not path.is_file():
        raise InputError(
            problem=f"no {CARD} in {public_dir}",
            fix="run the ingest stage of this task first (dvc repro ingest@<task>)",
            task=Path(public_dir).name,
            file=str(path),
        )
    card = json.loads(path.read_text(encoding="utf-8"))
    train = "train" if TaskType(card["type"]) is TaskType.classification else "train_pairs"
    rows = int(card["tables"][train]["rows"])
    classes = len(card.get("classes", {}).get("classes", [])) or 2
    return TaskSize(card["task_id"], rows, classes)


def split_budget(sizes: list[TaskSize], budget: TrainBudget) -> dict[str, int]:
    """Seconds per task: the floor for the small ones, the rest of the total shared by weight."""
    if not sizes:
        return {}
    floor = budget.task_floor_s
    fixed: set[str] = set()
    while True:
        free = [s for s in sizes if s.task not in fixed]
        left = budget.challenge_s - floor * len(fixed)
        total_weight = sum(s.weight for s in free)
        below = [s.task for s in free if left * s.weight / total_weight < floor] if free else []
        if not below or left <= 0:
            break
        fixed.update(below)
    out = {}
    for s in sizes:
        share = floor if s.task in fixed or not free else max(floor, left * s.weight / total_weight)
        out[s.task] = max(1, int(math.floor(share + 0.5)))
    return out


def write_budgets(public_root: Path, tasks: list[str], budget: TrainBudget, out_dir: Path) -> dict[str, dict]:
    """data/train_budget/<task>.json for every task of the challenge that has a release; returns what was written.

    A task whose ingest failed has no card.json yet: it is left out (its train stage cannot run
    anyway), so one broken contribution does not stop the others from training.
    """
    present = [task for task in tasks if (Path(public_root) / task / CARD).is_file()]
    sizes = [task_size(Path(public_root) / task) for task in present]
    seconds = split_budget(sizes, budget)
    written = {}
    with staged_dir(Path(out_dir)) as stage:
        for s in sizes:
            # only this task's facts: a file that names the others' (a share, a total) would change,
            # and retrain this task, whenever any task is added or re-ingested
            entry = {
                "task": s.task,
                "rows": s.rows,
                "classes": s.classes,
                "weight": s.weight,
                "seconds": seconds[s.task],
            }
            write_json(stage / BUDGET_FILE.format(task=s.task), entry)
            written[s.task] = entry
    return written


def read_budget(budget_dir: Path, task: str) -> float | None:
    """A task's tuning seconds from the train_budget stage's file; None when the file is absent."""
    path = Path(budget_dir) / BUDGET_FILE.format(task=task)
    if not path.is_file():
        return None
    return float(json.loads(path.read_text(encoding="utf-8"))["seconds"])
