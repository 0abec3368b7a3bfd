"""Ingest killed with SIGKILL at seeded random points: the release and its hidden labels stay whole
(the previous version or the new one, never a mix of files), a commit the killed run had decided is
finished by the next run, and that run leaves the same bytes as an undisturbed one and no debris.

The kill points are Python call events counted by a profiler in the child, drawn half over the whole
run and half over its commit (the swaps), where a kill is most likely to do harm.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tasks.core.files import commit_journal, finish_commit, sha256_file, sha256_tree
from tasks.ingest.stage import ingest_task
from tests.conftest import ROOT

TRIALS = 24
SEED = 15

CHILD = r"""
import json, os, signal, sys
from pathlib import Path
from tasks.core.params import load_params
from tasks.ingest.stage import ingest_task

task_dir, public, private, params_path, split_seed, kill_at = sys.argv[1:]
params = load_params(Path(params_path)).ingest.model_copy(update={"seed": int(split_seed)})
kill_at, calls, marks = int(kill_at), 0, {"atomic_write_bytes": [], "_swap_in": []}

def count(frame, event, arg):
    global calls
    if event in ("call", "c_call"):
        calls += 1
        if calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if event == "call" and frame.f_code.co_name in marks:
            marks[frame.f_code.co_name].append(calls)

sys.setprofile(count)
ingest_task(Path(task_dir), Path(public), Path(private), params)
sys.setprofile(None)
swaps = marks["_swap_in"]
journal = max(i for i in marks["atomic_write_bytes"] if i < swaps[0])  # the commit starts with its journal
print(json.dumps({"calls": calls, "commit_at": journal, "swaps": swaps}))
"""


def run_child(task_dir: Path, roots: Path, split_seed: int, kill_at: int) -> subprocess.CompletedProcess:
    args = [task_dir, roots / "public", roots / "private", ROOT / "params.yaml", split_seed, kill_at]
    return subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def tree(folder: Path) -> dict[str, str] | None:
    """Relative path -> sha256 of every file, or None when the folder does not exist."""
    if not folder.exists():
        return None
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def version(state: dict | None, versions: dict[str, dict | None]) -> str:
    for name, expected in versions.items():
        if state == expected:
            return name
    return "PARTIAL"


@pytest.mark.slow
def test_given_kills_at_random_points_when_rerun_then_bytes_match_an_undisturbed_run(
    good_classification, tmp_path, ingest_params
):
    task = good_classification.name
    new_seed = ingest_params.seed + 1  # the old release has ingest_params.seed: the two differ (card, report, split)
    undisturbed = tmp_path / "undisturbed"
    ingest_task(good_classification, undisturbed / "old" / "public", undisturbed / "old" / "private", ingest_params)
    new_params = ingest_params.model_copy(update={"seed": new_seed})
    ingest_task(good_classification, undisturbed / "new" / "public", undisturbed / "new" / "private", new_params)
    expected = {
        side: {"old": tree(undisturbed / "old" / side / task), "new": tree(undisturbed / "new" / side / task)}
        for side in ("public", "private")
    }
    assert expected["public"]["old"] != expected["public"]["new"]
    assert expected["private"]["old"] != expected["private"]["new"]

    profiles = {}  # call events of an undisturbed child, over a previous release and over none
    for with_previous in (True, False):
        roots = tmp_path / f"count-{with_previous}"
        if with_previous:
            ingest_task(good_classification, roots / "public", roots / "private", ingest_params)
        counted = run_child(good_classification, roots, new_seed, 0)
        assert counted.returncode == 0, counted.stderr
        profiles[with_previous] = json.loads(counted.stdout.strip().splitlines()[-1])
        calls, commit_at, swaps = (profiles[with_previous][k] for k in ("calls", "commit_at", "swaps"))
        assert 0 < commit_at < swaps[0] < swaps[1] < calls

    contribution = sha256_tree(good_classification)
    rng = np.random.default_rng(SEED)
    trials = []
    for trial in range(TRIALS):
        with_previous = trial % 4 != 3  # a quarter of the runs ingest the task for the first time
        calls, commit_at = profiles[with_previous]["calls"], profiles[with_previous]["commit_at"]
        window = (1, calls) if trial % 2 == 0 else (commit_at, calls)  # half of them during the commit
        trials.append((with_previous, int(rng.integers(*window))))
    trials.append((True, profiles[True]["swaps"][1]))  # and one kill between the two swaps
    outcomes: collections.Counter = collections.Counter()
    for trial, (with_previous, kill_at) in enumerate(trials):
        roots = tmp_path / f"trial{trial}"
        if with_previous:
            ingest_task(good_classification, roots / "public", roots / "private", ingest_params)
        killed = run_child(good_classification, roots, new_seed, kill_at)
        assert killed.returncode in (-9, 0), killed.stderr

        states = {}
        for side in ("public", "private"):
            versions = {"absent": None} if not with_previous else {"old": expected[side]["old"]}
            versions["new"] = expected[side]["new"]
            states[side] = version(tree(roots / side / task), versions)
            assert states[side] != "PARTIAL", f"trial {trial}: {side} folder is partial after a kill at {kill_at}"
        journal = commit_journal(roots / "private" / task)
        if states["public"] != states["private"]:  # mid-commit: the journal must say how to finish it
            assert journal.exists(), f"trial {trial}: mixed versions without a journal"
        if journal.exists():  # a decided commit rolls forward to the new release, both folders
            finish_commit(journal)
            for side in ("public", "private"):
                assert tree(roots / side / task) == expected[side]["new"], f"trial {trial}: {side} not rolled forward"
        outcomes[(states["private"], states["public"], killed.returncode)] += 1

        ingest_task(good_classification, roots / "public", roots / "private", new_params)  # the rerun
        for side in ("public", "private"):
            assert tree(roots / side / task) == expected[side]["new"], f"trial {trial}: {side} differs after rerun"
            assert sorted(os.listdir(roots / side)) == [task], f"trial {trial}: debris left in {side}"
    print(f"\n{len(trials)} kills, {profiles[True]} call events: (private, public, rc) {dict(outcomes)}")
    assert sum(n for (_, _, rc), n in outcomes.items() if rc == -9) == len(trials)  # every kill did happen
    assert outcomes[("new", "old", -9)] >= 1  # the kill between the swaps left a commit to finish
    assert sha256_tree(good_classification) == contribution  # and no kill touched the contribution
