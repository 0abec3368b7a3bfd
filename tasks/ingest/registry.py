"""Registering a task in params.yaml, keeping the organisers' comments and layout intact."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML


def register_task(params_path: Path, task_id: str) -> bool:
    """Append `task_id` to challenge.tasks; False when it is there already."""
    yaml = YAML()  # round-trip: comments and order survive
    yaml.preserve_quotes = True
    yaml.width = 4096
    data = yaml.load(Path(params_path).read_text(encoding="utf-8"))
    tasks = data["challenge"]["tasks"]
    if task_id in tasks:
        return False
    tasks.append(task_id)
    with open(params_path, "w", encoding="utf-8") as f:
        yaml.dump(data, f)
    return True
