"""The scoring stages under real DVC on a copy of the repository: demo teams, the trained
baselines, evaluate and leaderboard; a no-op rerun; a new `mmtc submit` reruns only the
scoring stages, scores only the new file, and adds a snapshot while keeping the old one."""

from __future__ import annotations

import csv
import io
import json
import re

import pyarrow.parquet as pq
import pytest
import yaml

from tests.integration.conftest import ALWAYS_RUN, run, stages_run
from tests.unit.board.test_leaderboard import recompute

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(scope="module")
def scored(built_repo):
    repo, first_output = built_repo
    tasks = yaml.safe_load((repo / "params.yaml").read_text())["challenge"]["tasks"]
    return repo, tasks, first_output


def test_the_scoring_stages_run_and_write_their_outputs(scored):
    repo, _, output = scored
    assert {"demo_teams", "evaluate", "leaderboard"} <= stages_run(output)
    for path in (
        "results/scores.parquet",
        "results/scores.duckdb",
        "results/evaluation.json",
        "leaderboard/latest.parquet",
        "leaderboard/latest.csv",
        "leaderboard/latest.md",
        "leaderboard/latest.html",
    ):
        assert (repo / path).is_file(), path
    assert len(list((repo / "leaderboard" / "snapshots").glob("*.parquet"))) == 1
    evaluation = json.loads((repo / "results" / "evaluation.json").read_text())
    assert evaluation["rejected"] == {"butterfingers": 1} and evaluation["not_scored"] == []


def test_the_demo_board_is_correct(scored):
    repo, tasks, _ = scored
    evaluation = json.loads((repo / "results" / "evaluation.json").read_text())
    scores = pq.read_table(repo / "results" / "scores.parquet").to_pylist()
    expected = recompute(scores, "best-public", {t: v["track"] for t, v in evaluation["tasks"].items()})
    board = {
        (r["track"], r["team"]): r
        for r in pq.read_table(repo / "leaderboard" / "latest.parquet").to_pylist()
        if r["level"] == "track"
    }
    assert set(board) == set(expected)
    for key, (mean, rank, position) in expected.items():
        # published scores are rounded to leaderboard.public_decimals (3); results/ keeps full precision
        assert board[key]["public"] == pytest.approx(mean, abs=5e-4 + 1e-12) and (
            board[key]["rank"],
            board[key]["position"],
        ) == (rank, position), key
    teams = {team for _, team in board}
    baselines = {f"baseline-{b}" for b in ("catboost-tuned", "catboost-default", "majority", "no-images", "text-only")}
    assert teams == baselines | {"one-rule", "noisy-copy", "half-done", "butterfingers"}
    assert all(board[(track, b)]["rank"] is None for track, b in board if b in baselines), "baselines take no rank"
    assert board[("matching", "half-done")]["missing"] == 2
    assert all(r["private"] is None for r in board.values()), "the challenge is open"
    md = (repo / "leaderboard" / "latest.md").read_text()
    assert "baseline-catboost-tuned *(baseline)*" in md and "*missing*" in md
    # every ranked team has an interval around its mean and a rank range, from the per-group counts
    for (track, team), r in board.items():
        assert r["public_lo"] is not None and r["public_lo"] <= r["public_hi"], (track, team)
        assert (r["rank_lo"] is None) == (r["rank"] is None), (track, team)
    assert "adjacent pairs of ranked teams are separated" in md and "Warning: random CLIP weights" in md


def test_a_rerun_with_nothing_new_runs_nothing(scored):
    repo, _, _ = scored
    again = run(["dvc", "repro", "leaderboard"], repo)
    assert stages_run(again.stdout) <= ALWAYS_RUN  # always re-checked (cheap); unchanged output stops there


def test_a_new_submission_rescores_only_itself_and_adds_a_snapshot(scored):
    repo, _, _ = scored
    snapshots = repo / "leaderboard" / "snapshots"
    (old,) = sorted(snapshots.glob("*.parquet"))
    old_bytes = old.read_bytes()
    one_rule = sorted((repo / "submissions" / "one-rule").glob("*/car_class.csv"))[-1]
    folder = repo / "incoming"
    folder.mkdir()
    rows = list(csv.reader(io.StringIO(one_rule.read_text())))
    classes = json.loads((repo / "data" / "public" / "car_class" / "card.json").read_text())["classes"]["classes"]
    rows[1][1] = classes[0] if rows[1][1] != classes[0] else classes[1]  # new content: one row changed
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    (folder / "car_class.csv").write_text(out.getvalue())
    submitted = run(
        ["mmtc", "submit", "--team", "newbie", "--name", "first-try", "--description", "<b>hello</b>", str(folder)],
        repo,
    )
    assert "accepted newbie/" in submitted.stdout
    after = run(["dvc", "repro", "leaderboard"], repo)
    assert stages_run(after.stdout) - ALWAYS_RUN == {"evaluate", "leaderboard"}
    assert re.search(r"evaluate: \d+ submissions, \d+ files: 1 scored, \d+ from the cache", after.stdout), after.stdout
    files = sorted(snapshots.glob("*.parquet"))
    assert len(files) == 2 and files[0] == old and old.read_bytes() == old_bytes, "the history survives the rerun"
    md = (repo / "leaderboard" / "latest.md").read_text()
    assert "newbie enters track classification" in md
    assert "<b>hello</b>" not in (repo / "leaderboard" / "latest.html").read_text()
    status = json.loads(run(["dvc", "status", "--json"], repo).stdout)
    assert set(status) <= ALWAYS_RUN, status  # listed as "always changed", nothing else
