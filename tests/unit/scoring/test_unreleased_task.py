"""A task without a release (its contribution broke at ingest) stops only its own chain: the
contracts, evaluation and board go on over the others and name the missing task and why."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest

from tasks.core.errors import InputError
from tasks.core.schema import EVALUATION_REPORT, SCORES
from tasks.scoring.evaluate import evaluate
from tasks.submissions.submit import submit
from tasks.submissions.validate import load_contracts, unreleased
from tests.scoring_support import EVALUATE, SUBMIT, TASKS, copy_release, perfect, utc, write_predictions


def test_the_other_tasks_are_scored_and_the_missing_one_is_named(tmp_path):
    public, private = copy_release(tmp_path / "release")
    subs = tmp_path / "submissions"
    folder = tmp_path / "in"
    for task in TASKS:
        write_predictions(folder, task, perfect(private, task, flip=1))
    assert submit(
        folder,
        "team-a",
        submissions_root=subs,
        contracts=load_contracts(public, TASKS),
        params=SUBMIT,
        now=utc("2026-11-05T10:00:00Z"),
    ).accepted
    shutil.rmtree(public / "same_item")  # the release of one task is gone (a failed ingest)
    assert list(load_contracts(public, TASKS)) == ["shop_kind"]
    assert list(unreleased(public, TASKS)) == ["same_item"]
    evaluate(subs, public, private, TASKS, tmp_path / "results", EVALUATE)
    report = json.loads((tmp_path / "results" / EVALUATION_REPORT).read_text())
    assert report["task_order"] == ["shop_kind"]
    assert "its ingest failed or has not run" in report["unreleased"]["same_item"]
    assert set(pq.read_table(tmp_path / "results" / SCORES).column("task").to_pylist()) == {"shop_kind"}

    shutil.rmtree(public / "shop_kind")
    with pytest.raises(InputError, match="no task of the challenge has a release"):
        load_contracts(public, TASKS)
    with pytest.raises(InputError, match="no task of the challenge has a release"):
        evaluate(subs, public, private, TASKS, tmp_path / "results", EVALUATE)


def test_the_board_names_the_task_that_is_not_on_it(tmp_path):
    from tests.unit.board.test_leaderboard import BASE_ROWS, run_board, write_results

    write_results(tmp_path / "results", BASE_ROWS)
    report = json.loads((tmp_path / "results" / EVALUATION_REPORT).read_text())
    report["unreleased"] = {"c9": "no release (data/public/c9/card.json not found): its ingest failed or has not run"}
    (tmp_path / "results" / EVALUATION_REPORT).write_text(json.dumps(report))
    result = run_board(tmp_path, "2026-11-10T00:00:00Z")
    assert result.snapshot.provenance["data"]["unreleased"] == report["unreleased"]
    md = (tmp_path / "leaderboard" / "latest.md").read_text()
    assert "**Not on the board: c9**: no release (data/public/c9/card.json not found)" in md
    html = (tmp_path / "leaderboard" / "latest.html").read_text()
    assert 'data-task="c9"' in html and "its ingest failed or has not run" in html
