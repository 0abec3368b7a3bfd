"""The layout's one rule that no stage test sees: stage logic (tasks/) never imports Prefect;
orchestration is flows/ alone, reached from the command line (tasks/cli.py) only."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EDGE = {"tasks/cli.py"}  # the thin command line may start flows


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_tasks_never_import_prefect_or_flows():
    offenders = {}
    for path in sorted((ROOT / "tasks").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        bad = sorted(
            m
            for m in imported_modules(path)
            if m.split(".")[0] == "prefect" or (m.split(".")[0] == "flows" and rel not in EDGE)
        )
        if bad:
            offenders[rel] = bad
    assert offenders == {}, f"stage logic imports orchestration (move it to flows/): {offenders}"


def test_the_scan_sees_a_nested_import(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("def f():\n    from prefect.deployments import run_deployment\n    import flows.trigger\n")
    assert {"prefect.deployments", "flows.trigger"} <= imported_modules(sample)
