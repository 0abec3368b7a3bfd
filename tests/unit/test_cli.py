"""The CLI turns bad input into a readable message and exit status 2."""

from __future__ import annotations

from tasks.cli import main
from tests.conftest import CORPUS, ROOT


def test_bad_contribution_exits_2_with_the_fix(capsys):
    code = main(["--params", str(ROOT / "params.yaml"), "validate-task", str(CORPUS / "broken" / "duplicate_ids")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: duplicate_ids: items.csv: column 'Item ID'") and "Fix:" in err


def test_ingest_command(good_classification, tmp_path, capsys):
    code = main(
        [
            "--params",
            str(ROOT / "params.yaml"),
            "ingest",
            "good_items",
            "--contributions",
            str(good_classification.parent),
            "--public",
            str(tmp_path / "pub"),
            "--private",
            str(tmp_path / "priv"),
        ]
    )
    assert code == 0
    assert "ingested good_items (classification)" in capsys.readouterr().out
    assert (tmp_path / "pub" / "good_items" / "card.json").is_file()


def test_every_stage_has_a_subcommand():
    from tasks.cli import COMMANDS

    assert {"demo", "ingest", "validate-task", "add-task", "run"} <= set(COMMANDS)
