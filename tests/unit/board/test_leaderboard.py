"""The leaderboard: selection, track means with missing tasks, ranks, baselines, the closed
view; snapshots (immutable, no duplicates, diffs) and byte-stable latest files."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.board.ranking import BOARD_SCHEMA, TaskMeta, build_board
from tasks.board.render import write_latest
from tasks.board.snapshots import (
    code_identity,
    list_snapshots,
    read_snapshot,
    snapshot_time,
    update_leaderboard,
    weights_identity,
)
from tasks.core.params import LeaderboardParams
from tasks.core.schema import EVALUATION_REPORT, SCORES, SNAPSHOTS_DIR
from tasks.scoring.evaluate import SCORES_SCHEMA

TASKS = [
    TaskMeta("c1", "classification", "macro_f1", "first", "classification"),
    TaskMeta("c2", "classification", "macro_f1", "second", "classification"),
    TaskMeta("m1", "matching", "f1", "pairs", "matching"),
]
TRACK = {t.task: t.track for t in TASKS}
METRIC = {t.task: t.metric for t in TASKS}


def score_rows(
    team: str, sid: str, when: str, task: str, public: float, private: float, baseline: bool = False
) -> list[dict]:
    rows = []
    for split, value in (("public", public), ("private", private), ("all", (public + private) / 2)):
        for metric in (METRIC[task], "accuracy") if task.startswith("c") else (METRIC[task], "precision"):
            rows.append(
                {
                    "team": team,
                    "submission_id": sid,
                    "submission": f"{team}/{sid}",
                    "name": sid,
                    "baseline": baseline,
                    "submitted_at": when,
                    "task": task,
                    "track": TRACK[task],
                    "split": split,
                    "metric": metric,
                    "primary": metric == METRIC[task],
                    "value": value if metric == METRIC[task] else 0.5,
                    "file": f"{task}.csv",
                    "file_sha256": "0" * 64,
                    "labels_sha256": "1" * 64,
                    "scorer_version": "test",
                }
            )
    return rows


def table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCORES_SCHEMA)


def board_rows(board: pa.Table, level: str = "track") -> dict:
    return {
        (r["track"], r["team"]) if level == "track" else (r["team"], r["task"]): r
        for r in board.to_pylist()
        if r["level"] == level
    }


def test_best_public_selection_ties_go_to_the_earlier_submission():
    rows = (
        score_rows("a", "s1", "2026-11-02T10:00:00Z", "c1", 0.70, 0.60)
        + score_rows("a", "s2", "2026-11-03T10:00:00Z", "c1", 0.80, 0.50)
        + score_rows("a", "s3", "2026-11-04T10:00:00Z", "c1", 0.80, 0.90)  # ties s2 on public: s2 is earlier
        + score_rows("a", "s4", "2026-11-05T10:00:00Z", "c1", 0.10, 0.99)
    )
    best = board_rows(build_board(table(rows), TASKS, {}, "best-public", closed=False), "task")
    assert best[("a", "c1")]["submission_id"] == "s2" and best[("a", "c1")]["public"] == 0.80
    last = board_rows(build_board(table(rows), TASKS, {}, "last", closed=False), "task")
    assert last[("a", "c1")]["submission_id"] == "s4"


def test_missing_tasks_count_zero_and_show_as_missing():
    rows = score_rows("a", "s1", "2026-11-02T10:00:00Z", "c1", 0.6, 0.5) + score_rows(
        "b", "s1", "2026-11-02T10:00:00Z", "m1", 0.9, 0.8
    )
    board = build_board(table(rows), TASKS, {"b": 2}, "best-public", closed=False)
    tracks, cells = board_rows(board), board_rows(board, "task")
    assert tracks[("classification", "a")]["public"] == pytest.approx(0.3)
    assert tracks[("classification", "a")]["missing"] == 1
    assert (
        cells[("a", "c2")]["missing"] == 1
        and cells[("a", "c2")]["public"] is None
        and cells[("a", "c2")]["submission_id"] is None
    )
    assert ("matching", "a") not in tracks and ("classification", "b") not in tracks, (
        "a team enters only the tracks it submitted to"
    )
    assert tracks[("matching", "b")]["rejected"] == 2 and tracks[("matching", "b")]["entries"] == 1
    assert board.schema == BOARD_SCHEMA


def test_baselines_are_placed_but_not_ranked_and_private_only_when_closed():
    rows = (
        score_rows("a", "s1", "2026-11-02T10:00:00Z", "m1", 0.70, 0.90)
        + score_rows("b", "s1", "2026-11-03T10:00:00Z", "m1", 0.80, 0.60)
        + score_rows("baseline-x", "m1", "2026-11-01T00:00:00Z", "m1", 0.75, 0.70, baseline=True)
    )
    open_board = board_rows(build_board(table(rows), TASKS, {}, "best-public", closed=False))
    assert [open_board[("matching", t)]["position"] for t in ("b", "baseline-x", "a")] == [1, 2, 3]
    assert [open_board[("matching", t)]["rank"] for t in ("b", "baseline-x", "a")] == [1, None, 2]
    assert all(r["private"] is None and r["gap"] is None for r in open_board.values())
    closed = board_rows(build_board(table(rows), TASKS, {}, "best-public", closed=True))
    assert closed[("matching", "a")]["rank"] == 1 and closed[("matching", "a")]["public_rank"] == 2, (
        "final ranks follow the private scores"
    )
    assert closed[("matching", "a")]["private"] == 0.90 and closed[("matching", "a")]["gap"] == pytest.approx(-0.20)
    assert closed[("matching", "baseline-x")]["rank"] is None


def test_equal_means_go_to_the_team_that_reached_it_first():
    rows = score_rows("late", "s1", "2026-11-05T10:00:00Z", "m1", 0.5, 0.5) + score_rows(
        "early", "s1", "2026-11-02T10:00:00Z", "m1", 0.5, 0.5
    )
    board = board_rows(build_board(table(rows), TASKS, {}, "best-public", closed=False))
    assert board[("matching", "early")]["rank"] == 1 and board[("matching", "late")]["rank"] == 2


# --- an independent recomputation ------------------------------------------------------------------


def recompute(rows: list[dict], policy: str, track_of: dict | None = None) -> dict:
    """Track means and ranks from the score rows, with plain Python and no shared code."""
    track_of = track_of or TRACK
    subs: dict[tuple, dict] = {}
    for r in rows:
        if r["primary"] and r["split"] == "public":
            subs[(r["team"], r["task"], r["submission"])] = r
    chosen: dict[tuple, dict] = {}
    for (team, task, _), r in sorted(subs.items()):
        old = chosen.get((team, task))
        if old is None:
            chosen[(team, task)] = r
        elif policy == "best-public":
            if r["value"] > old["value"] or (
                r["value"] == old["value"]
                and (r["submitted_at"], r["submission"]) < (old["submitted_at"], old["submission"])
            ):
                chosen[(team, task)] = r
        elif (r["submitted_at"], r["submission"]) > (old["submitted_at"], old["submission"]):
            chosen[(team, task)] = r
    result = {}
    for track in sorted(set(track_of.values())):
        tasks = [t for t in track_of if track_of[t] == track]
        teams = sorted({team for (team, task) in chosen if task in tasks})
        entries = []
        for team in teams:
            values = [chosen[(team, t)]["value"] if (team, t) in chosen else 0.0 for t in tasks]
            reached = max(chosen[(team, t)]["submitted_at"] for t in tasks if (team, t) in chosen)
            entries.append((team, sum(values) / len(tasks), reached, team.startswith("baseline-")))
        entries.sort(key=lambda e: (-e[1], e[2], e[0]))
        rank = 0
        for position, (team, mean, _, baseline) in enumerate(entries, start=1):
            if not baseline:
                rank += 1
            result[(track, team)] = (mean, None if baseline else rank, position)
    return result


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("policy", ["best-public", "last"])
def test_track_means_and_ranks_match_an_independent_recomputation(seed, policy):
    rng = random.Random(seed)
    rows = []
    for t in range(rng.randint(1, 7)):
        team = f"baseline-{t}" if rng.random() < 0.25 else f"team-{t}"
        for s in range(rng.randint(1, 4)):
            when = f"2026-11-{rng.randint(1, 9):02d}T{rng.randint(0, 23):02d}:00:00Z"
            for task in rng.sample(list(TRACK), rng.randint(1, 3)):
                value = rng.choice([0.25, 0.5, 0.75, rng.random()])  # ties on purpose
                rows += score_rows(
                    team, f"s{s}", when, task, value, rng.random(), baseline=team.startswith("baseline-")
                )
    board = board_rows(build_board(table(rows), TASKS, {}, policy, closed=False))
    expected = recompute(rows, policy)
    assert set(board) == set(expected)
    for key, (mean, rank, position) in expected.items():
        assert math.isclose(board[key]["public"], mean, abs_tol=1e-12), key
        assert (board[key]["rank"], board[key]["position"]) == (rank, position), key


# --- snapshots and the latest files ------------------------------------------------------------------


def write_results(results: Path, rows: list[dict], rejected: dict | None = None) -> None:
    results.mkdir(parents=True, exist_ok=True)
    pq.write_table(table(rows), results / SCORES)
    (results / EVALUATION_REPORT).write_text(
        json.dumps(
            {
                "scorer_version": "test",
                "tasks": {
                    t.task: {
                        "type": t.task_type,
                        "track": t.track,
                        "primary_metric": t.metric,
                        "title": t.title,
                        "labels_sha256": "1" * 64,
                    }
                    for t in TASKS
                },
                "task_order": [t.task for t in TASKS],
                "submissions": len({r["submission"] for r in rows}),
                "files": 0,
                "rejected": rejected or {},
                "not_scored": [],
                "ignored_files": [],
            }
        )
    )


def run_board(tmp_path: Path, when: str, closed: bool = False, policy: str = "best-public", root: Path | None = None):
    root = root or tmp_path
    result = update_leaderboard(
        root / "results",
        root / "leaderboard",
        LeaderboardParams(policy=policy),
        "Test challenge",
        closed,
        now=datetime.fromisoformat(when.replace("Z", "+00:00")),
        code={"mmtc": "test", "git_commit": "unknown", "code_sha256": "x"},
        weights=weights_identity(root),
        params_used={"challenge": {"closed": closed}, "leaderboard": {"policy": policy}},
    )
    result.files = write_latest(result, root / "leaderboard")
    return result


BASE_ROWS = (
    score_rows("a", "s1", "2026-11-02T10:00:00Z", "c1", 0.6, 0.5)
    + score_rows("b", "s1", "2026-11-02T11:00:00Z", "m1", 0.7, 0.6)
    + score_rows("baseline-x", "m1", "2026-11-01T00:00:00Z", "m1", 0.65, 0.7, baseline=True)
)


def test_a_rerun_with_nothing_new_adds_no_snapshot_and_the_same_bytes(tmp_path):
    write_results(tmp_path / "results", BASE_ROWS)
    first = run_board(tmp_path, "2026-11-10T00:00:00Z")
    assert first.created and [p.name for p in list_snapshots(tmp_path / "leaderboard" / SNAPSHOTS_DIR)] == [
        "20261110T000000Z.parquet"
    ]
    latest = {p.name: p.read_bytes() for p in first.files}
    second = run_board(tmp_path, "2026-11-11T00:00:00Z")
    assert not second.created and second.snapshot.name == "20261110T000000Z"
    assert len(list_snapshots(tmp_path / "leaderboard" / SNAPSHOTS_DIR)) == 1
    assert {p.name: p.read_bytes() for p in second.files} == latest, "same inputs, same bytes"


def test_the_same_inputs_in_another_place_give_the_same_bytes(tmp_path):
    for place in ("one", "two"):
        write_results(tmp_path / place / "results", BASE_ROWS)
        run_board(tmp_path, "2026-11-10T00:00:00Z", root=tmp_path / place)
    for name in (
        "latest.parquet",
        "latest.csv",
        "latest.md",
        "latest.html",
        f"{SNAPSHOTS_DIR}/20261110T000000Z.parquet",
    ):
        assert (tmp_path / "one" / "leaderboard" / name).read_bytes() == (
            tmp_path / "two" / "leaderboard" / name
        ).read_bytes(), name


def test_a_change_adds_an_immutable_snapshot_and_a_diff(tmp_path):
    write_results(tmp_path / "results", BASE_ROWS)
    run_board(tmp_path, "2026-11-10T00:00:00Z")
    folder = tmp_path / "leaderboard" / SNAPSHOTS_DIR
    old_bytes = (folder / "20261110T000000Z.parquet").read_bytes()
    assert not os.stat(folder / "20261110T000000Z.parquet").st_mode & 0o222
    rows = (
        BASE_ROWS
        + score_rows("c", "s1", "2026-11-10T12:00:00Z", "m1", 0.9, 0.5)
        + score_rows("a", "s2", "2026-11-10T13:00:00Z", "c1", 0.8, 0.5)
    )
    write_results(tmp_path / "results", rows)
    result = run_board(tmp_path, "2026-11-10T00:00:00Z")  # a clock that did not move: names stay ordered
    assert result.created and result.snapshot.name == "20261110T000001Z"
    assert (folder / "20261110T000000Z.parquet").read_bytes() == old_bytes, "earlier snapshots are never rewritten"
    assert result.snapshot.provenance["previous"] == "20261110T000000Z"
    diff = result.diff
    assert [(e["track"], e["team"], e["rank"]) for e in diff.new_entries] == [("matching", "c", 1)]
    assert [(c["team"], c["before"], c["after"]) for c in diff.rank_changes] == [("b", 1, 2)]
    changes = {(c["team"], c["task"], c["column"]): (c["before"], c["after"]) for c in diff.score_changes}
    assert changes[("a", None, "public")] == (pytest.approx(0.3), pytest.approx(0.4))
    assert changes[("a", "c1", "public")] == (0.6, 0.8)
    md = (tmp_path / "leaderboard" / "latest.md").read_text()
    assert "## Changes since the previous snapshot" in md and "c enters track matching at rank 1" in md
    assert "| matching | b | 1 | 2 |" in md
    history = [read_snapshot(p).name for p in list_snapshots(folder)]
    assert history == ["20261110T000000Z", "20261110T000001Z"]


def test_closing_the_challenge_is_a_new_snapshot_that_reveals_private_scores(tmp_path):
    write_results(tmp_path / "results", BASE_ROWS)
    run_board(tmp_path, "2026-11-10T00:00:00Z")
    assert (
        "Private"
        not in (tmp_path / "leaderboard" / "latest.html")
        .read_text()
        .split("<main>")[1]
        .split('<section id="provenance">')[0]
    )
    result = run_board(tmp_path, "2026-11-20T00:00:00Z", closed=True)
    assert result.created
    md = (tmp_path / "leaderboard" / "latest.md").read_text()
    assert "The challenge is **closed**" in md and "Mean (private)" in md and "Gap" in md
    csv_rows = (tmp_path / "leaderboard" / "latest.csv").read_text().splitlines()
    assert csv_rows[0].split(",")[10:12] == ["private", "gap"]


def test_provenance_names_data_code_weights_and_params(tmp_path):
    write_results(tmp_path / "results", BASE_ROWS)
    prov = run_board(tmp_path, "2026-11-10T00:00:00Z").snapshot.provenance
    assert set(prov) >= {"data", "code", "weights", "params", "snapshot", "created_at", "previous", "digest"}
    assert prov["data"]["labels_sha256"]["c1"] == "1" * 64 and prov["data"]["scorer_version"] == "test"
    assert prov["weights"]["status"] == "absent"
    (tmp_path / "data" / "embeddings").mkdir(parents=True)
    (tmp_path / "data" / "embeddings" / "weights.json").write_text(
        json.dumps({"model": "ViT-B-32", "pretrained": "laion2b", "sha256": "abc"})
    )
    with_weights = run_board(tmp_path, "2026-11-11T00:00:00Z")
    assert with_weights.created, "other weights: a new snapshot"
    assert with_weights.snapshot.provenance["weights"]["identity"]["model"] == "ViT-B-32"
    stored = json.loads(
        pq.read_schema(tmp_path / "leaderboard" / SNAPSHOTS_DIR / f"{with_weights.snapshot.name}.parquet").metadata[
            b"mmtc.provenance"
        ]
    )
    assert stored == with_weights.snapshot.provenance


def test_snapshot_time_honours_source_date_epoch():
    assert snapshot_time({"SOURCE_DATE_EPOCH": "1793923200"}) == datetime(2026, 11, 6, tzinfo=UTC)


def test_code_identity_says_unknown_without_a_commit(tmp_path):
    assert code_identity(tmp_path)["git_commit"] == "unknown"  # not a checkout
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert code_identity(tmp_path)["git_commit"] == "unknown"  # a checkout with no commit yet
