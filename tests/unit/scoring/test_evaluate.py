"""Evaluation end to end on the corpus release: what is scored, the cache and what invalidates
it, files that are not what was submitted, and the outputs (Parquet, DuckDB, report)."""

from __future__ import annotations

import json
import os
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tasks.scoring.evaluate as ev
from tasks.core.schema import EVALUATION_REPORT, SCORES, SUBMISSION_META
from tasks.scoring.evaluate import evaluate, open_scores, scorer_version
from tasks.submissions.submit import submit
from tasks.submissions.validate import load_contracts
from tests.scoring_support import EVALUATE, SUBMIT, TASKS, copy_release, perfect, utc, write_baseline, write_predictions


@pytest.fixture
def world(tmp_path):
    public, private = copy_release(tmp_path / "release")
    subs = tmp_path / "submissions"
    contracts = load_contracts(public, TASKS)

    def send(team: str, when: str, flip: int = 0, score: bool = True, tasks=TASKS, fmt: str = "csv"):
        folder = tmp_path / "in" / f"{team}-{when}"
        shutil.rmtree(folder, ignore_errors=True)
        for task in tasks:
            columns = perfect(private, task, flip=flip)
            if task == "same_item" and score:
                columns["score"] = [0.9 if v == 1 else 0.2 for v in perfect(private, task)["label"]]
            write_predictions(folder, task, columns, fmt=fmt)
        result = submit(folder, team, submissions_root=subs, contracts=contracts, params=SUBMIT, now=utc(when))
        assert result.accepted, result.summary()
        return result

    def run(tasks=TASKS):
        return evaluate(subs, public, private, tasks, tmp_path / "results", EVALUATE)

    return {
        "public": public,
        "private": private,
        "subs": subs,
        "send": send,
        "run": run,
        "results": tmp_path / "results",
        "tmp": tmp_path,
    }


def scores_of(world) -> list[dict]:
    return pq.read_table(world["results"] / SCORES).to_pylist()


def test_every_submission_task_split_and_metric_is_scored(world):
    world["send"]("team-a", "2026-11-02T10:00:00Z")
    world["send"]("team-b", "2026-11-02T11:00:00Z", flip=3, score=False, fmt="parquet")
    write_baseline(world["subs"], "oracle", "shop_kind", perfect(world["private"], "shop_kind"))
    report = world["run"]()
    assert report.submissions == 3 and report.files == 5 and report.cached == 0
    assert report.scored == 4, "the baseline's file has the same content as team-a's: scored once"
    rows = scores_of(world)
    per = {}
    for r in rows:
        per.setdefault((r["team"], r["task"]), set()).add((r["split"], r["metric"]))
    splits = {"public", "private", "all"}
    assert per[("team-a", "shop_kind")] == {
        (s, m) for s in splits for m in ("accuracy", "macro_f1", "balanced_accuracy")
    }
    assert per[("team-a", "same_item")] == {
        (s, m) for s in splits for m in ("precision", "recall", "f1", "average_precision")
    }
    assert per[("team-b", "same_item")] == {(s, m) for s in splits for m in ("precision", "recall", "f1")}, (
        "no score column: no AP"
    )
    value = {(r["team"], r["task"], r["split"], r["metric"]): r["value"] for r in rows}
    assert value[("team-a", "shop_kind", "all", "accuracy")] == 1.0
    assert value[("team-a", "same_item", "all", "average_precision")] == 1.0
    assert value[("team-b", "shop_kind", "all", "accuracy")] == pytest.approx(9 / 12)
    assert value[("baseline-oracle", "shop_kind", "public", "macro_f1")] == 1.0
    assert all(r["baseline"] == r["team"].startswith("baseline-") for r in rows)
    assert {r["primary"] for r in rows if r["metric"] in ("macro_f1", "f1")} == {True}
    assert rows == sorted(rows, key=lambda r: (r["team"], r["submission"], r["task"], r["split"], r["metric"]))


def test_nothing_new_reads_the_cache_and_writes_the_same_bytes(world):
    world["send"]("team-a", "2026-11-02T10:00:00Z")
    world["run"]()
    first = (world["results"] / SCORES).read_bytes()
    again = world["run"]()
    assert again.scored == 0 and again.cached == 2
    assert (world["results"] / SCORES).read_bytes() == first
    world["send"]("team-b", "2026-11-03T10:00:00Z", flip=1)
    third = world["run"]()
    assert third.scored == 2 and third.cached == 2, "only the new files are scored"


def test_identical_files_of_two_teams_are_scored_once(world):
    world["send"]("team-a", "2026-11-02T10:00:00Z")
    world["send"]("team-b", "2026-11-02T10:00:00Z")
    report = world["run"]()
    assert report.files == 4 and report.scored == 2
    assert {r["team"] for r in scores_of(world)} == {"team-a", "team-b"}


def test_changed_labels_rescore_that_task(world):
    world["send"]("team-a", "2026-11-02T10:00:00Z")
    world["run"]()
    path = world["private"] / "shop_kind" / "test_labels.parquet"
    labels = pq.read_table(path).to_pydict()
    labels["label"][0] = "vase" if labels["label"][0] != "vase" else "mug"
    pq.write_table(pa.table(labels), path)
    report = world["run"]()
    assert report.scored == 1 and report.cached == 1
    accuracy = [
        r["value"]
        for r in scores_of(world)
        if r["task"] == "shop_kind" and r["split"] == "all" and r["metric"] == "accuracy"
    ]
    assert accuracy == [pytest.approx(11 / 12)]


def test_a_new_scorer_version_rescores_everything(world, monkeypatch, tmp_path):
    world["send"]("team-a", "2026-11-02T10:00:00Z")
    world["run"]()
    before = scorer_version()
    edited = tmp_path / "scoring"
    shutil.copytree(ev.SQL_DIR, edited, ignore=shutil.ignore_patterns("__pycache__"))
    (edited / "evaluate.py").write_text((edited / "evaluate.py").read_text() + "\n# a change to the reading code\n")
    monkeypatch.setattr(ev, "SQL_DIR", edited)
    assert scorer_version() != before
    report = world["run"]()
    assert report.scored == 2 and report.cached == 0
    assert {r["scorer_version"] for r in scores_of(world)} == {scorer_version()}


def test_the_scorer_version_covers_every_file_of_the_scoring_folder(tmp_path):
    folder = tmp_path / "scoring"
    shutil.copytree(ev.SQL_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    before = scorer_version(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    assert {p.suffix for p in files} >= {".py", ".sql"}
    for path in files:
        original = path.read_bytes()
        path.write_bytes(original + b"\n")
        assert scorer_version(folder) != before, path.name
        path.write_bytes(original)
    assert scorer_version(folder) == before


def test_a_file_that_changed_since_it_was_submitted_is_not_scored(world):
    good = world["send"]("team-a", "2026-11-02T10:00:00Z")
    bad = world["send"]("team-b", "2026-11-02T11:00:00Z")
    path = bad.folder / "shop_kind.csv"
    os.chmod(path, 0o644)
    path.write_text(path.read_text().replace("vase", "mug"))
    report = world["run"]()
    assert [i["submission"] for i in report.invalid] == [f"team-b/{bad.record.submission_id}"]
    assert "content differs from the sha256" in report.invalid[0]["problem"]
    assert {r["submission"] for r in scores_of(world)} == {f"team-a/{good.record.submission_id}"}
    saved = json.loads((world["results"] / EVALUATION_REPORT).read_text())
    assert saved["not_scored"][0]["submission"] == f"team-b/{bad.record.submission_id}"


def test_a_canonical_twin_that_changed_is_not_scored(world):
    """Evaluate reads the canonical twin only: an edit to it (say, to the labels the original does
    not hold) is caught by its sha256 before it is scored."""
    world["send"]("team-a", "2026-11-02T10:00:00Z")
    bad = world["send"]("team-b", "2026-11-02T11:00:00Z")
    twin = bad.folder / "shop_kind.canonical.parquet"
    os.chmod(twin, 0o644)
    table = pq.read_table(twin)
    pq.write_table(table.set_column(1, "label", pa.array(["mug"] * table.num_rows)), twin)
    report = world["run"]()
    assert [i["submission"] for i in report.invalid] == [f"team-b/{bad.record.submission_id}"]


def test_evaluate_scores_the_validated_twin_not_the_file_as_sent(world):
    """Given a twin rewritten to predict 'mug' everywhere (and its sha256 updated), the scores follow
    the twin: the file as sent is never parsed again."""
    from tasks.core.files import sha256_file

    result = world["send"]("team-a", "2026-11-02T10:00:00Z")
    twin = result.folder / "shop_kind.canonical.parquet"
    os.chmod(twin, 0o644)
    table = pq.read_table(twin)
    pq.write_table(table.set_column(1, "label", pa.array(["mug"] * table.num_rows)), twin)
    meta = result.folder / SUBMISSION_META
    os.chmod(meta, 0o644)
    record = json.loads(meta.read_text())
    record["canonical"]["shop_kind.canonical.parquet"] = sha256_file(twin)
    meta.write_text(json.dumps(record))
    world["run"]()
    truth = pq.read_table(world["private"] / "shop_kind" / "test_labels.parquet").column("label").to_pylist()
    accuracy = [
        r["value"]
        for r in scores_of(world)
        if r["task"] == "shop_kind" and r["split"] == "all" and r["metric"] == "accuracy"
    ]
    assert accuracy == [pytest.approx(truth.count("mug") / len(truth))]


@pytest.mark.parametrize(
    "damage, problem",
    [
        ("team", "names team 'someone-else'"),
        ("baseline", "only teams named 'baseline-*' are baselines"),
        ("folder", "differs from its folder name"),
        ("link", "missing or not a regular file"),
        ("json", "does not match the contract"),
        ("no_twin", "has no validated twin same_item.canonical.parquet: it did not come in through submit()"),
        ("twin_gone", "file 'shop_kind.canonical.parquet' is missing or not a regular file"),
    ],
)
def test_folders_that_are_not_sound_submissions_are_reported(world, damage, problem):
    result = world["send"]("team-a", "2026-11-02T10:00:00Z")
    folder = result.folder
    os.chmod(folder / SUBMISSION_META, 0o644)
    record = json.loads((folder / SUBMISSION_META).read_text())
    if damage == "team":
        record["team"] = "someone-else"
    elif damage == "baseline":
        record["baseline"] = True
    elif damage == "folder":
        folder = folder.rename(folder.with_name("20261102T100000Z-00000000"))
    elif damage == "link":
        target = world["private"] / "shop_kind" / "test_labels.parquet"
        os.chmod(folder / "shop_kind.csv", 0o644)
        (folder / "shop_kind.csv").unlink()
        (folder / "shop_kind.csv").symlink_to(target)
    elif damage == "json":
        record["extra"] = 1
    elif damage == "no_twin":  # a file put there by hand, around submit(): never scored
        record["canonical"] = {}
    elif damage == "twin_gone":
        (folder / "shop_kind.canonical.parquet").unlink()
    (folder / SUBMISSION_META).write_text(json.dumps(record))
    report = world["run"]()
    assert report.submissions == 0 and problem in report.invalid[0]["problem"]
    assert scores_of(world) == []


def test_files_of_tasks_outside_the_challenge_are_ignored(world):
    world["send"]("team-a", "2026-11-02T10:00:00Z")
    report = world["run"](tasks=["shop_kind"])
    assert report.files == 1 and report.ignored == [
        {"submission": report.ignored[0]["submission"], "file": "same_item.csv", "why": "not a task of the challenge"}
    ]


def test_bom_and_column_order_do_not_matter(world):
    folder = world["tmp"] / "odd"
    columns = perfect(world["private"], "shop_kind")
    folder.mkdir()
    lines = ["label,id"] + [f"{label},{i}" for i, label in zip(columns["id"], columns["label"])]
    (folder / "shop_kind.csv").write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(lines) + "\r\n").encode())
    result = submit(
        folder,
        "team-odd",
        submissions_root=world["subs"],
        contracts=load_contracts(world["public"], TASKS),
        params=SUBMIT,
        now=utc("2026-11-02T10:00:00Z"),
    )
    assert result.accepted, result.summary()
    world["run"]()
    assert {r["value"] for r in scores_of(world) if r["metric"] == "accuracy"} == {1.0}


def test_the_duckdb_file_answers_questions(world):
    world["send"]("team-a", "2026-11-02T10:00:00Z")
    world["send"]("team-b", "2026-11-02T11:00:00Z", flip=6)
    world["run"]()
    con = open_scores(world["results"])
    try:
        best = con.sql(
            "SELECT team FROM primary_scores WHERE split = 'public' AND task = 'shop_kind' ORDER BY value DESC LIMIT 1"
        ).fetchall()
        assert best == [("team-a",)]
        assert con.sql("SELECT count(*) FROM submissions").fetchall() == [(2,)]
        assert con.sql("SELECT count(*) FROM tasks").fetchall() == [(2,)]
        tables = {r[0] for r in con.sql("SELECT table_name FROM information_schema.tables").fetchall()}
        assert {"scores", "submissions", "tasks", "rejected", "primary_scores"} <= tables
        columns = {
            r[0]
            for r in con.sql(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'scores'"
            ).fetchall()
        }
        assert "label" not in columns, "hidden labels never reach the results"
    finally:
        con.close()
