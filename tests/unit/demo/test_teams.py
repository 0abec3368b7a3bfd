"""The demo teams: seeded, from the public release only, through the submit path; and the
leaderboard they produce with baselines, checked against an independent recomputation."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest

from tasks.board.ranking import build_board, read_evaluation, tasks_of
from tasks.core.schema import REJECTED_DIR, SCORE, SCORES
from tasks.demo.teams import generate_demo_teams
from tasks.scoring.evaluate import evaluate
from tasks.submissions.validate import load_contracts
from tests.scoring_support import EVALUATE, SUBMIT, build_small_release, synthetic_baselines
from tests.unit.board.test_leaderboard import recompute

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return build_small_release(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def demo(release, project_params, tmp_path_factory):
    public, private = release
    hidden_away = private.with_name("hidden-away")
    private.rename(hidden_away)  # the teams must not need the hidden labels
    try:
        subs = tmp_path_factory.mktemp("subs") / "submissions"
        contracts = load_contracts(public, project_params.challenge.tasks)
        results = generate_demo_teams(
            public, subs, contracts, SUBMIT, project_params.demo_teams, project_params.challenge.opens_at
        )
    finally:
        hidden_away.rename(private)
    return public, private, subs, results


def test_each_team_submits_what_its_plan_says(demo, project_params):
    public, private, subs, results = demo
    plan = project_params.demo_teams.teams
    assert len(results) == sum(len(p.days) for p in plan.values())
    rejected = [r for r in results if not r.accepted]
    assert [(r.record.team, r.record.name) for r in rejected] == [("butterfingers", "attempt-1")]
    messages = "\n".join(str(e) for e in rejected[0].errors)
    assert "label is not a class of this task" in messages and "given more than once" in messages
    assert (subs / REJECTED_DIR / "butterfingers").is_dir()
    half = [r for r in results if r.record.team == "half-done"]
    assert [r.record.tasks for r in half] == [sorted(plan["half-done"].tasks)]
    for r in results:
        if r.accepted and r.record.team == "noisy-copy":
            assert all(
                SCORE not in pq.read_schema(r.folder / f).names
                if f.endswith(".parquet")
                else SCORE not in (r.folder / f).read_text().splitlines()[0]
                for f in r.record.files
            )
        if r.accepted and r.record.team == "one-rule":
            assert (
                "person_link.parquet" in r.record.files
                and SCORE in pq.read_schema(r.folder / "person_link.parquet").names
            )


def test_the_teams_are_reproducible(demo, project_params, tmp_path):
    public, private, subs, results = demo
    again = generate_demo_teams(
        public,
        tmp_path / "s",
        load_contracts(public, project_params.challenge.tasks),
        SUBMIT,
        project_params.demo_teams,
        project_params.challenge.opens_at,
    )
    assert [(r.record.team, r.record.submission_id, r.accepted) for r in again] == [
        (r.record.team, r.record.submission_id, r.accepted) for r in results
    ]


def test_the_demo_board_matches_an_independent_recomputation(demo, project_params, tmp_path):
    public, private, subs, _ = demo
    work = tmp_path / "submissions"
    shutil.copytree(subs, work)
    tasks = project_params.challenge.tasks
    synthetic_baselines(work, private, tasks)
    evaluate(work, public, private, tasks, tmp_path / "results", EVALUATE)
    evaluation = read_evaluation(tmp_path / "results")
    scores = pq.read_table(tmp_path / "results" / SCORES)
    board = build_board(scores, tasks_of(evaluation), evaluation["rejected"], "best-public", closed=False)
    rows = {(r["track"], r["team"]): r for r in board.to_pylist() if r["level"] == "track"}
    expected = recompute(scores.to_pylist(), "best-public", {t: v["track"] for t, v in evaluation["tasks"].items()})
    assert set(rows) == set(expected)
    for key, (mean, rank, position) in expected.items():
        assert rows[key]["public"] == pytest.approx(mean, abs=1e-12) and (rows[key]["rank"], rows[key]["position"]) == (
            rank,
            position,
        ), key
    assert rows[("classification", "baseline-synthetic")]["rank"] is None
    assert rows[("classification", "half-done")]["missing"] == 2 and rows[("matching", "half-done")]["missing"] == 2
    assert rows[("classification", "butterfingers")]["rejected"] == 1
    ranked = sorted((r["rank"], team) for (track, team), r in rows.items() if track == "matching" and r["rank"])
    assert [team for _, team in ranked][:1] == ["one-rule"], "the tuned fuzzy matcher leads the teams"
