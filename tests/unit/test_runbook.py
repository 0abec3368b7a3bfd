"""The organisers' runbook (docs/organisers.md): every `mmtc` subcommand it shows is run by a
test (test_docs.py checks that each command parses; this checks that each is exercised)."""

from __future__ import annotations

import re

from tests.conftest import ROOT
from tests.unit.test_docs import commands

DOC = ROOT / "docs" / "organisers.md"


def runbook_commands() -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## The runbook") :]
    return commands(section)


def test_the_runbook_covers_a_whole_challenge():
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## The runbook") :]
    for step in (
        "Open the challenge",
        "Issue the schedule",
        "Take in submissions every night",
        "Back up",
        "Close",
        "Publish the final board",
    ):
        assert step in section, step
    shown = {tuple(w[:2]) for w in runbook_commands()}
    assert (".venv/bin/dvc", "pull") in shown and (".venv/bin/dvc", "push") in shown
    assert (".venv/bin/mmtc", "intake") in shown


def test_every_mmtc_command_of_the_runbook_is_run_by_a_test():
    subcommands = sorted({w[1] for w in runbook_commands() if w[0].endswith("mmtc")})
    assert {"intake", "leaderboard", "run", "add-task", "validate-task"} <= set(subcommands)
    tests = [p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py") if p.name != "test_runbook.py"]
    for sub in subcommands:
        quoted = '"' + re.escape(sub) + '"'
        runs = re.compile(r'"--params",\s*[^,\]]+,\s*' + quoted + r'|\[\s*"mmtc",\s*' + quoted)
        assert any(runs.search(t) for t in tests), f"no test runs `mmtc {sub}`"
