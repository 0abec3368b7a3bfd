"""The stages (and the nightly intake) that tests/unit/test_killed.py kills, each on a work folder, with fixed times and
params so that an undisturbed run and a rerun after a kill can be compared byte for byte."""

from __future__ import annotations

from pathlib import Path

from tasks.core.params import LeaderboardParams
from tasks.core.schema import SNAPSHOTS_DIR
from tests.scoring_support import EVALUATE, SUBMIT, utc

TASKS = ["shop_kind", "same_item"]
# where each stage starts writing its outputs: half of the kills are drawn after it
COMMITS = {
    "submit": "_record_accepted",
    "evaluate": "_write_parquet_atomic",
    "leaderboard": "_write_snapshot",
    "intake": "_claim",
}
# a point after the main output is in place: one kill there in each test
AFTER = {
    "submit": "fsync_dir",
    "evaluate": "_write_database",
    "leaderboard": "write_latest",
    "intake": "_remove_claim",
}
INTAKE_TIMES = {"intake": "2026-11-03T03:00:00Z", "intake-next-night": "2026-11-04T03:00:00Z"}
TIMES = {"team-a": "2026-11-02T10:00:00Z", "team-b": "2026-11-02T11:00:00Z", "team-k": "2026-11-03T09:00:00Z"}


def _submit(work: Path, team: str) -> None:
    from tasks.submissions.submit import submit
    from tasks.submissions.validate import load_contracts

    submit(
        work / "uploads" / team,
        team,
        submissions_root=work / "submissions",
        contracts=load_contracts(work / "release" / "public", TASKS),
        params=SUBMIT,
        name="attempt",
        now=utc(TIMES[team]),
    )


def run_stage(stage: str, work: Path) -> None:
    work = Path(work)
    if stage == "submit-earlier":
        _submit(work, "team-a")
        _submit(work, "team-b")
    elif stage == "submit":
        _submit(work, "team-k")
    elif stage in ("intake", "intake-next-night"):
        from tasks.submissions.intake import take_in
        from tasks.submissions.validate import load_contracts

        take_in(
            work / "inbox",
            work / "submissions",
            contracts=load_contracts(work / "release" / "public", TASKS),
            params=SUBMIT,
            now=utc(INTAKE_TIMES[stage]),
        )
    elif stage == "evaluate":
        from tasks.scoring.evaluate import evaluate

        release = work / "release"
        evaluate(work / "submissions", release / "public", release / "private", TASKS, work / "results", EVALUATE)
    elif stage == "leaderboard":
        from tasks.board.render import write_latest
        from tasks.board.snapshots import update_leaderboard

        first = not (work / "leaderboard" / SNAPSHOTS_DIR).is_dir()
        params = LeaderboardParams(policy="best-public")
        result = update_leaderboard(
            work / "results",
            work / "leaderboard",
            params.model_copy(update={"bootstrap": params.bootstrap.model_copy(update={"reps": 20})}),
            challenge_name="kill test",
            closed=False,
            now=utc("2026-11-03T00:00:00Z" if first else "2026-11-04T00:00:00Z"),
            code={"commit": "test"},
            weights={"status": "test"},
            params_used={},
        )
        write_latest(result, work / "leaderboard")
    else:
        raise ValueError(stage)
