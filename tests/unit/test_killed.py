"""Submit, the nightly intake, evaluate and leaderboard killed with SIGKILL at seeded random points (ingest has its own
test, tests/unit/ingest/test_ingest_killed.py): nothing partial is ever visible under a final name,
what was there before (the team's earlier submission, the previous results, the previous snapshot
and `latest`) stays readable, no submission is half or double recorded, no upload of the inbox is
lost, and the next run leaves the same bytes as an undisturbed one.

Each trial runs the stage in a child process that a profiler kills at its n-th Python call event
(n drawn from the whole run, half of the draws from the moment it starts writing its outputs),
then checks the folder, runs the stage again in this process and compares the bytes.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from tasks.core.files import sha256_file
from tasks.core.schema import LOCKS_DIR, REJECTED_DIR, REJECTION_META, STAGING_DIR, SUBMISSION_META, SubmissionRecord
from tasks.submissions.intake import CLAIMS_DIR
from tests.conftest import ROOT
from tests.scoring_support import RELEASE, perfect, write_predictions

TRIALS = 8  # per stage (one of them at a fixed point): 32 kills in all
SEED = 15
TASKS = ["shop_kind", "same_item"]

CHILD = r"""
import json, os, signal, sys
from datetime import datetime, UTC
from pathlib import Path

stage, work, kill_at = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
sys.path.insert(0, sys.argv[4])
from tests.test_killed_support import AFTER, COMMITS, run_stage
import tasks.board.render, tasks.board.snapshots, tasks.scoring.evaluate, tasks.submissions.intake  # not counted

calls, commit_at, after_at = 0, None, None
def count(frame, event, arg):
    global calls, commit_at, after_at
    if event in ("call", "c_call"):
        calls += 1
        if calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if event == "call" and commit_at is None and frame.f_code.co_name == COMMITS[stage]:
            commit_at = calls
        if event == "call" and after_at is None and frame.f_code.co_name == AFTER[stage]:
            after_at = calls

sys.setprofile(count)
run_stage(stage, work)
sys.setprofile(None)
print(json.dumps({"calls": calls, "commit_at": commit_at, "after_at": after_at}))
"""


def run_child(stage: str, work: Path, kill_at: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CHILD, stage, str(work), str(kill_at), str(ROOT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def tree(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Relative path -> sha256 of every file under a final name (dot names are working files)."""
    out = {}
    for p in sorted(folder.rglob("*")) if folder.exists() else []:
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts) and rel.name not in skip:
            out[rel.as_posix()] = sha256_file(p)
    return out


# --- the worlds each stage runs in ------------------------------------------------------------


def prepare(stage: str, work: Path) -> None:
    """The state before the run that is killed: a release, an earlier submission, earlier results
    and an earlier snapshot (each stage finds the previous output of itself in place)."""
    from tests.test_killed_support import run_stage

    shutil.copytree(RELEASE, work / "release")
    for team, flip in (("team-a", 2), ("team-b", 4), ("team-k", 1)):
        folder = work / "uploads" / team
        write_predictions(folder, "shop_kind", perfect(RELEASE / "private", "shop_kind", flip=flip))
        write_predictions(
            folder, "same_item", perfect(RELEASE / "private", "same_item", flip=flip // 2) | {"score": [0.5] * 10}
        )
    run_stage("submit-earlier", work)
    run_stage("evaluate", work)
    run_stage("leaderboard", work)
    if stage == "intake":  # four uploads: a folder, a bad file, a good file, a team name that is not one
        inbox = work / "inbox"
        write_predictions(inbox / "team-k" / "try-1", "shop_kind", perfect(RELEASE / "private", "shop_kind", flip=3))
        (inbox / "team-k" / "shop_kind.csv").write_text("id,label\ns01,nope\n")
        write_predictions(inbox / "team-b", "same_item", perfect(RELEASE / "private", "same_item", flip=3))
        write_predictions(inbox / "Bad Team" / "mine", "shop_kind", perfect(RELEASE / "private", "shop_kind", flip=5))
    if stage not in ("submit", "intake"):
        run_stage("submit", work)  # new input for evaluate and leaderboard
    if stage == "leaderboard":
        run_stage("evaluate", work)


def check_submissions(root: Path, earlier: dict[str, str]) -> str:
    """Every folder under a final name is a whole submission; the earlier one is untouched."""
    state = "absent"
    for team_dir in [root / "team-k", root / REJECTED_DIR / "team-k"]:
        for folder in sorted(team_dir.iterdir()) if team_dir.is_dir() else []:
            meta = folder / (SUBMISSION_META if team_dir.parent == root else REJECTION_META)
            assert meta.is_file(), f"{folder} has no record: a half-recorded submission"
            record = json.loads(meta.read_text())
            record = SubmissionRecord.model_validate(
                {k: v for k, v in record.items() if k in SubmissionRecord.model_fields}
            )
            for name, sha in {**record.files, **record.canonical}.items():
                assert sha256_file(folder / name) == sha, f"{folder / name} differs from its record"
            state = "recorded"
    assert tree(root / "team-a") == earlier, "the team's earlier submission changed"
    return state


def uploads(inbox: Path) -> dict[str, set[str]]:
    """Each upload waiting in the inbox (team/name) -> the sha256s of its files."""
    out = {}
    for team_dir in sorted(inbox.iterdir()):
        for upload in sorted(team_dir.iterdir()) if team_dir.name != CLAIMS_DIR else []:
            files = [upload] if upload.is_file() else sorted(p for p in upload.rglob("*") if p.is_file())
            out[f"{team_dir.name}/{upload.name}"] = {sha256_file(f) for f in files}
    return out


def check_intake(work: Path, sent: dict[str, set[str]], earlier: dict[str, str], *, finished: bool = False) -> str:
    """No upload lost (each still in the inbox, in a claim, or in a record of an intake), none recorded
    twice, every record whole; `finished`: every upload recorded, none waiting."""
    from tests.test_killed_support import INTAKE_TIMES

    check_submissions(work / "submissions", earlier)
    waiting = {sha256_file(p) for p in (work / "inbox").rglob("*") if p.is_file() and p.name != "claim.json"}
    recorded: collections.Counter = collections.Counter()
    for meta in (work / "submissions").rglob("*.json"):
        if meta.name in (SUBMISSION_META, REJECTION_META):
            record = json.loads(meta.read_text())
            for name, sha in record["files"].items():
                assert sha256_file(meta.parent / name) == sha, f"{meta.parent / name} differs from its record"
            if record["submitted_at"] in INTAKE_TIMES.values():
                recorded[frozenset(record["files"].values())] += 1
    for upload, shas in sent.items():
        assert shas <= waiting or recorded[frozenset(shas)] >= 1, f"the upload {upload} is lost"
        assert recorded[frozenset(shas)] <= 1, f"the upload {upload} is recorded twice"
        if finished:
            assert recorded[frozenset(shas)] == 1 and not shas & waiting, f"the upload {upload} is not taken in"
    return f"{sum(recorded.values())} recorded"


def check_results(results: Path, versions: dict[str, dict[str, str]]) -> str:
    """Each output under its final name is the previous version or the new one, and readable."""
    now = tree(results, skip=("scores.duckdb",))
    for name, sha in now.items():
        known = {v.get(name) for v in versions.values()}
        assert sha in known, f"{name} is neither the previous nor the new version: partial"
        if name.endswith(".parquet"):
            pq.read_table(results / name)
        elif name.endswith(".json"):
            json.loads((results / name).read_text())
    if (results / "scores.duckdb").exists():
        con = duckdb.connect(str(results / "scores.duckdb"), read_only=True)
        con.sql("SELECT count(*) FROM scores").fetchall()
        con.close()
    return next((k for k, v in versions.items() if v == now), "mixed")


def check_board(board: Path, versions: dict[str, dict[str, str]]) -> str:
    now = tree(board)
    previous = versions["previous"]
    for name, sha in previous.items():
        if name.startswith("snapshots/"):
            assert now.get(name) == sha, f"the previous snapshot {name} changed or vanished"
    for name, sha in now.items():
        assert sha in {v.get(name) for v in versions.values()}, f"{name} is neither the previous nor the new version"
        if name.endswith(".parquet"):
            pq.read_table(board / name)
    assert (board / "latest.parquet").is_file(), "latest vanished"
    return next((k for k, v in versions.items() if v == now), "mixed")


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["submit", "intake", "evaluate", "leaderboard"])
def test_given_kills_at_random_points_when_rerun_then_bytes_match_an_undisturbed_run(stage, tmp_path):
    from tests.test_killed_support import run_stage

    undisturbed = tmp_path / "undisturbed"
    prepare(stage, undisturbed)
    sent = uploads(undisturbed / "inbox") if stage == "intake" else {}
    before = {
        "submit": tree(undisturbed / "submissions"),
        "intake": tree(undisturbed / "submissions"),
        "evaluate": tree(undisturbed / "results", skip=("scores.duckdb",)),
        "leaderboard": tree(undisturbed / "leaderboard"),
    }[stage]
    earlier = tree(undisturbed / "submissions" / "team-a")
    counted = run_child(stage, undisturbed, 0)
    assert counted.returncode == 0, counted.stderr
    profile = json.loads(counted.stdout.strip().splitlines()[-1])
    calls, commit_at, after_at = profile["calls"], profile["commit_at"], profile["after_at"]
    assert 0 < commit_at < after_at < calls
    folder = {"submit": "submissions", "intake": "submissions", "evaluate": "results", "leaderboard": "leaderboard"}[
        stage
    ]
    expected = tree(undisturbed / folder, skip=("scores.duckdb",) if stage == "evaluate" else ())
    inbox_after = tree(undisturbed / "inbox")
    assert expected != before, "the run must change something"
    versions = {"previous": before, "new": expected}

    rng = np.random.default_rng([SEED, len(stage)])
    outcomes: collections.Counter = collections.Counter()
    draws = [int(rng.integers(1 if t % 2 == 0 else commit_at, calls)) for t in range(TRIALS - 1)]
    draws.append(after_at)  # and one once the main output is in place (submit: renamed in, not yet synced)
    for trial, kill_at in enumerate(draws):
        work = tmp_path / f"trial{trial}"
        prepare(stage, work)
        killed = run_child(stage, work, kill_at)
        assert killed.returncode in (-9, 0), killed.stderr
        if stage == "submit":
            state = check_submissions(work / "submissions", earlier)
        elif stage == "intake":
            state = check_intake(work, sent, earlier)
        elif stage == "evaluate":
            state = check_results(work / "results", versions)
        else:
            state = check_board(work / "leaderboard", versions)
        outcomes[(state, killed.returncode)] += 1

        if stage == "intake":  # the next night's run, at its own time: each upload recorded once
            next_night = tmp_path / f"trial{trial}-next-night"
            shutil.copytree(work, next_night, symlinks=True)
            run_stage("intake-next-night", next_night)
            check_intake(next_night, sent, earlier, finished=True)
            shutil.rmtree(next_night)
        run_stage(stage, work)  # the next run, at the same time: the same bytes as an undisturbed run
        after = tree(work / folder, skip=("scores.duckdb",) if stage == "evaluate" else ())
        assert after == expected, f"trial {trial} (kill at {kill_at} of {calls}): bytes differ after the rerun"
        if stage == "submit":
            assert check_submissions(work / "submissions", earlier) == "recorded"
            assert not any((work / "submissions" / STAGING_DIR).iterdir()), "staging debris left"
            assert sorted(p.name for p in (work / "submissions").iterdir()) == sorted(
                [LOCKS_DIR, STAGING_DIR, "team-a", "team-b", "team-k"]
            ), "one record of the submission, nothing else"
        if stage == "intake":
            assert tree(work / "inbox") == inbox_after, "the inbox differs from an undisturbed run's"
            assert not any((work / "inbox" / CLAIMS_DIR).iterdir()), "a claim is left"
            check_intake(work, sent, earlier, finished=True)
        if stage == "evaluate":
            con = duckdb.connect(str(work / "results" / "scores.duckdb"), read_only=True)
            mine = con.sql("SELECT * FROM scores ORDER BY ALL").fetchall()
            con.close()
            con = duckdb.connect(str(undisturbed / "results" / "scores.duckdb"), read_only=True)
            assert mine == con.sql("SELECT * FROM scores ORDER BY ALL").fetchall()
            con.close()
    print(f"\n{stage}: {TRIALS} kills over {calls} call events: (state after the kill, rc) {dict(outcomes)}")
    assert sum(n for (_, rc), n in outcomes.items() if rc == -9) == TRIALS, "every kill did happen"
    if os.environ.get("MMTC_KILL_REPORT"):
        with open(os.environ["MMTC_KILL_REPORT"], "a") as f:
            f.write(
                json.dumps({"stage": stage, "trials": TRIALS, "calls": calls, "outcomes": str(dict(outcomes))}) + "\n"
            )
