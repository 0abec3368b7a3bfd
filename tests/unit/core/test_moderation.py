"""Organisers' decisions: appended, never rewritten; the last one wins; evaluate leaves out the withdrawn."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tasks import cli
from tasks.core.errors import InputError
from tasks.core.moderation import decide, excluded, read_decisions, states


@pytest.fixture
def root(tmp_path):
    (tmp_path / "alpha" / "20261105T100000Z-0123abcd").mkdir(parents=True)
    return tmp_path


def test_decisions_are_appended_and_the_last_one_wins(root):
    sub = "alpha/20261105T100000Z-0123abcd"
    when = datetime(2026, 11, 6, tzinfo=UTC)
    decide(root, sub, "disqualify", by="org", reason="used test labels", now=when)
    assert excluded(root) == {sub: "disqualified"}
    first = (root / "_moderation.jsonl").read_text()
    decide(root, sub, "reinstate", by="org")
    assert (root / "_moderation.jsonl").read_text().startswith(first)  # append-only
    assert states(root) == {sub: "active"} and excluded(root) == {}
    assert [d.action for d in read_decisions(root)] == ["disqualify", "reinstate"]
    assert json.loads(first)["at"] == "2026-11-06T00:00:00Z"


@pytest.mark.parametrize(
    "submission, action, reason, message",
    [
        ("alpha/20261105T100000Z-0123abcd", "delete", "", "unknown action"),
        ("alpha/nope", "withdraw", "", "no stored submission"),
        ("../alpha/20261105T100000Z-0123abcd", "withdraw", "", "no stored submission"),
        ("_rejected/alpha", "withdraw", "", "no stored submission"),
        ("alpha/20261105T100000Z-0123abcd", "withdraw", "two\nlines", "several lines"),
        ("alpha/20261105T100000Z-0123abcd", "reinstate", "", "active already"),
    ],
)
def test_bad_decisions_are_refused_and_not_recorded(root, submission, action, reason, message):
    with pytest.raises(InputError, match=message):
        decide(root, submission, action, by="org", reason=reason)
    assert not (root / "_moderation.jsonl").exists()


def test_a_broken_log_names_its_line(root):
    (root / "_moderation.jsonl").write_text('{"submission": "a/b"}\n')
    with pytest.raises(InputError, match="line 1"):
        read_decisions(root)


def test_mmtc_moderate(root, capsys):
    assert (
        cli.main(["moderate", "alpha/20261105T100000Z-0123abcd", "--action", "withdraw", "--submissions", str(root)])
        == 0
    )
    assert cli.main(["moderate", "--list", "--submissions", str(root)]) == 0
    assert "withdraw\talpha/20261105T100000Z-0123abcd" in capsys.readouterr().out
    assert cli.main(["moderate", "alpha/x", "--action", "withdraw", "--submissions", str(root)]) == 2
