"""dvc.yaml's code deps cannot drift from the code.

Each stage's CLI command is imported in a fresh interpreter; every module under tasks/ that it
loads must lie inside that stage's deps. Stage code imports other stage code only at the top
of a module (the CLI alone imports lazily, per command), so what an import loads is what a
run loads. tests/integration/test_dvc_pipeline.py checks the same on real runs, files opened
(SQL, templates, model configs) included.
"""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tasks import cli
from tests.stage_deps import ROOT, TASKS, StageCode, stage_code, uncovered

FIRST_PARTY = ("tasks", "flows")
STAGES = stage_code()

LOADED = """
import importlib, json, sys
import tasks.cli
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None))))
"""


def handler_imports(fn) -> list[str]:
    """The first-party modules a CLI command imports, following the CLI helpers it calls."""
    modules, seen, todo = [], set(), [fn]
    while todo:
        f = todo.pop()
        if f.__name__ in seen:
            continue
        seen.add(f.__name__)
        for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(f)))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in FIRST_PARTY:
                modules.append(node.module)
            elif isinstance(node, ast.Import):
                modules += [a.name for a in node.names if a.name.split(".")[0] in FIRST_PARTY]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                target = getattr(cli, node.func.id, None)
                if inspect.isfunction(target) and target.__module__ == cli.__name__:
                    todo.append(target)
    return sorted(set(modules))


def loaded_by(stage: StageCode) -> list[str]:
    """Files under tasks/ that importing the stage's command loads, relative to the repository."""
    modules = handler_imports(cli.COMMANDS[stage.command][0])
    assert modules, f"the command of stage {stage.stage} imports no stage code"
    out = subprocess.run([sys.executable, "-c", LOADED, *modules], cwd=ROOT, capture_output=True, text=True, check=True)
    files = [Path(f).resolve() for f in json.loads(out.stdout)]
    return [f.relative_to(ROOT).as_posix() for f in files if f.is_relative_to(TASKS)]


@pytest.fixture(scope="module")
def loaded() -> dict[str, list[str]]:
    return {s.stage: loaded_by(s) for s in STAGES}


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.stage)
def test_every_module_a_stage_loads_is_in_its_deps(stage, loaded):
    missing = uncovered(loaded[stage.stage], stage.deps)
    assert not missing, (
        f"stage {stage.stage} loads {missing}, which its deps in dvc.yaml ({', '.join(stage.deps)}) do not cover: add the folder (or file) there"
    )


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.stage)
def test_every_code_dep_of_a_stage_is_needed(stage, loaded):
    """Removing any code dep from a stage makes the check above fail: the deps are what it reads."""
    for dep in stage.deps:
        rest = tuple(d for d in stage.deps if d != dep)
        assert uncovered(loaded[stage.stage], rest), f"stage {stage.stage} lists {dep} but loads nothing from it"


def test_the_check_fails_when_a_needed_folder_is_removed(loaded):
    evaluate = next(s for s in STAGES if s.stage == "evaluate")
    assert "tasks/scoring" in evaluate.deps
    without = tuple(d for d in evaluate.deps if d != "tasks/scoring")
    assert "tasks/scoring/evaluate.py" in uncovered(loaded["evaluate"], without)


def _top_level(tree: ast.Module) -> set[int]:
    """Statements at module level, also inside a module-level if or try (TYPE_CHECKING, fallbacks)."""
    top, todo = set(), list(tree.body)
    while todo:
        node = todo.pop()
        top.add(id(node))
        if isinstance(node, (ast.If, ast.Try)):
            todo += (
                node.body
                + node.orelse
                + getattr(node, "finalbody", [])
                + [s for h in getattr(node, "handlers", []) for s in h.body]
            )
    return top


def test_stage_code_imports_stage_code_only_at_the_top_of_a_module():
    lazy = []
    for path in sorted(TASKS.rglob("*.py")):
        if path == TASKS / "cli.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = _top_level(tree)
        for node in ast.walk(tree):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            if any(n.split(".")[0] in FIRST_PARTY for n in names) and id(node) not in top:
                lazy.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not lazy, f"first-party imports inside functions hide a stage's deps from the check: {lazy}"


def test_every_stage_command_is_a_cli_command():
    assert {s.command for s in STAGES} <= set(cli.COMMANDS)
