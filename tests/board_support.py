"""A scored board for the board tests: real submissions to the corpus release, scored by the
evaluate stage (so the bootstrap has its per-group counts), ranked and rendered."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

from tasks.board.render import write_latest
from tasks.board.snapshots import update_leaderboard, weights_identity
from tasks.core.params import BootstrapParams, LeaderboardParams
from tasks.core.schema import WEIGHTS_IDENTITY
from tasks.scoring.evaluate import evaluate
from tasks.submissions.submit import submit
from tasks.submissions.validate import load_contracts
from tests.scoring_support import EVALUATE, SUBMIT, TASKS, copy_release, perfect, utc, write_baseline, write_predictions

# team -> (when, wrong rows per task; None: the task is not submitted)
TEAMS = {
    "alpha": ("2026-11-02T10:00:00Z", {"shop_kind": 0, "same_item": 1}),
    "beta": ("2026-11-02T11:00:00Z", {"shop_kind": 3, "same_item": 2}),
    "gamma": ("2026-11-03T09:00:00Z", {"shop_kind": 7, "same_item": 0}),
    "delta": ("2026-11-03T10:00:00Z", {"shop_kind": 9, "same_item": None}),
}
RANDOM_WEIGHTS = {"kind": "random-init", "model": "mmtc-tiny-test", "seed": 0, "reason": "offline test"}


def scored_board(
    root: Path,
    closed: bool = False,
    decimals: int = 3,
    reps: int = 200,
    random_weights: bool = True,
    ladder: str = "off",
    ladder_step: float = 0.01,
):
    public, private = copy_release(root / "release")
    subs = root / "submissions"
    contracts = load_contracts(public, TASKS)
    for team, (when, wrong) in TEAMS.items():
        folder = root / "in" / team
        shutil.rmtree(folder, ignore_errors=True)
        tasks = [t for t in TASKS if wrong[t] is not None]
        for task in tasks:
            columns = perfect(private, task, flip=wrong[task])
            if task == "same_item":
                columns["score"] = [0.8 if v == 1 else 0.3 for v in columns["label"]]
            write_predictions(folder, task, columns)
        result = submit(folder, team, submissions_root=subs, contracts=contracts, params=SUBMIT, now=utc(when))
        assert result.accepted, result.summary()
    write_baseline(subs, "oracle", "shop_kind", perfect(private, "shop_kind", flip=1))
    evaluate(subs, public, private, TASKS, root / "results", EVALUATE)
    if random_weights:
        (root / WEIGHTS_IDENTITY).parent.mkdir(parents=True, exist_ok=True)
        (root / WEIGHTS_IDENTITY).write_text(json.dumps(RANDOM_WEIGHTS))
    params = LeaderboardParams(
        policy="best-public",
        public_decimals=decimals,
        bootstrap=BootstrapParams(reps=reps, seed=1),
        ladder=ladder,
        ladder_step=ladder_step,
    )
    result = update_leaderboard(
        root / "results",
        root / "leaderboard",
        params,
        "Test challenge",
        closed,
        now=datetime.fromisoformat("2026-11-10T00:00:00+00:00"),
        code={"mmtc": "test", "git_commit": "unknown", "code_sha256": "x"},
        weights=weights_identity(root),
        params_used={"challenge": {"closed": closed}, "leaderboard": params.model_dump()},
    )
    result.files = write_latest(result, root / "leaderboard")
    return result
