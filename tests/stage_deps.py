"""What a DVC stage's code deps must cover, shared by the unit test (import closure) and the
integration test (what the real stage loaded and opened under DVC).

A stage's code deps are the entries of its `deps` under tasks/ in dvc.yaml: folders or files.
Two kinds of file need no dep: the edge, tasks/cli.py (argument parsing, loading params,
printing; stage logic lives in the stage groups), and a package `__init__.py` that holds
only a docstring (it cannot change what a stage computes).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "tasks"
EDGE = frozenset({"tasks/cli.py"})


@dataclass(frozen=True)
class StageCode:
    stage: str  # the dvc.yaml stage name (a foreach stage once)
    command: str  # the `mmtc` subcommand its cmd runs
    deps: tuple[str, ...]  # its deps under tasks/


def stage_code(dvc_yaml: Path = ROOT / "dvc.yaml") -> list[StageCode]:
    stages = yaml.safe_load(Path(dvc_yaml).read_text(encoding="utf-8"))["stages"]
    out = []
    for name, stage in stages.items():
        spec = stage.get("do", stage)
        words = spec["cmd"].split()
        assert words[0] == "mmtc", f"stage {name} does not run the mmtc command: {spec['cmd']}"
        deps = tuple(d for d in spec.get("deps", []) if isinstance(d, str) and d.startswith("tasks/"))
        out.append(StageCode(name, words[1], deps))
    return out


def docstring_only(path: Path) -> bool:
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return len(body) <= 1 and all(
        isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str) for n in body
    )


def needs_dep(rel: str) -> bool:
    path = ROOT / rel
    if rel in EDGE:
        return False
    return not (path.name == "__init__.py" and docstring_only(path))


def covered(rel: str, deps: tuple[str, ...]) -> bool:
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


def uncovered(files: list[str], deps: tuple[str, ...]) -> list[str]:
    """The files (relative to the repository root) that a stage used but its deps do not cover."""
    return sorted(f for f in set(files) if needs_dep(f) and not covered(f, deps))
