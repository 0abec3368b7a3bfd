"""Submitting: what is stored and how, limits, idempotency, atomicity and concurrency."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tasks import cli
from tasks.core.errors import InputError, InputErrors
from tasks.core.files import sha256_file
from tasks.core.schema import REJECTED_DIR, REJECTION_META, STAGING_DIR, SUBMISSION_META, SubmissionRecord
from tasks.submissions.submit import count_accepted, default_name, submit
from tasks.submissions.validate import load_contracts
from tests.conftest import ROOT
from tests.scoring_support import RELEASE, SUBMIT, TASKS, perfect, utc, write_predictions

NOW = utc("2026-11-05T10:00:00Z")


@pytest.fixture(scope="module")
def contracts():
    return load_contracts(RELEASE / "public", TASKS)


@pytest.fixture
def predictions(tmp_path) -> Path:
    folder = tmp_path / "my_preds"
    write_predictions(folder, "shop_kind", perfect(RELEASE / "private", "shop_kind", flip=2))
    write_predictions(
        folder, "same_item", perfect(RELEASE / "private", "same_item", flip=1) | {"score": [0.5] * 10}, fmt="parquet"
    )
    return folder


def test_an_accepted_submission_is_one_folder_with_its_record(tmp_path, predictions, contracts):
    root = tmp_path / "submissions"
    result = submit(
        predictions,
        "team-a",
        submissions_root=root,
        contracts=contracts,
        params=SUBMIT,
        description="<b>first</b> try",
        now=NOW,
    )
    assert result.accepted and not result.duplicate
    assert re.fullmatch(r"20261105T100000Z-[0-9a-f]{8}", result.record.submission_id)
    folder = root / "team-a" / result.record.submission_id
    assert result.folder == folder
    assert sorted(p.name for p in folder.iterdir()) == [
        "same_item.canonical.parquet",
        "same_item.parquet",
        "shop_kind.canonical.parquet",
        "shop_kind.csv",
        SUBMISSION_META,
    ]
    record = SubmissionRecord.model_validate_json((folder / SUBMISSION_META).read_text())
    assert record == result.record
    assert record.team == "team-a" and record.name == "my-preds" and record.submitted_at == "2026-11-05T10:00:00Z"
    assert record.tasks == ["same_item", "shop_kind"] and not record.baseline
    assert record.description == "<b>first</b> try", "stored verbatim; escaped where shown"
    for name, sha in record.files.items():
        assert sha256_file(folder / name) == sha
        assert (folder / name).read_bytes() == (predictions / name).read_bytes(), "stored exactly as sent"
        assert not os.stat(folder / name).st_mode & 0o222, "stored files are read-only"
    assert result.rows == {"shop_kind": 12, "same_item": 10}
    assert not any((root / STAGING_DIR).iterdir()), "no staging leftovers"
    assert sorted(record.canonical) == ["same_item.canonical.parquet", "shop_kind.canonical.parquet"]
    for name, sha in record.canonical.items():
        assert sha256_file(folder / name) == sha and not os.stat(folder / name).st_mode & 0o222


def test_the_canonical_twin_holds_the_predictions_as_validated(tmp_path, contracts):
    """Given a CSV with a BOM, CRLF line ends, columns out of order and rows unsorted, and a Parquet
    file with integer keys, dictionary labels and integer scores, when submitted, then each
    canonical twin is typed Parquet (key text, label text or int8, score float64) sorted by key,
    and the same predictions in either format give byte-identical twins."""
    truth = perfect(RELEASE / "private", "shop_kind")
    order = sorted(range(12), key=lambda i: -i)
    csv_text = "label,id\r\n" + "".join(f"{truth['label'][i]},{truth['id'][i]}\r\n" for i in order)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "shop_kind.csv").write_bytes(b"\xef\xbb\xbf" + csv_text.encode())
    pq.write_table(
        pa.table({"id": truth["id"], "label": pa.array(truth["label"]).dictionary_encode()}), b / "shop_kind.parquet"
    )
    pairs = perfect(RELEASE / "private", "same_item")
    pq.write_table(
        pa.table({"pair_id": pairs["pair_id"], "label": pa.array(pairs["label"], pa.int64()), "score": [1] * 10}),
        b / "same_item.parquet",
    )
    root = tmp_path / "submissions"
    ra = submit(a, "team-a", submissions_root=root, contracts=contracts, params=SUBMIT, now=NOW)
    rb = submit(b, "team-b", submissions_root=root, contracts=contracts, params=SUBMIT, now=NOW)
    assert ra.accepted and rb.accepted, (ra.summary(), rb.summary())
    twin_a = pq.read_table(ra.folder / "shop_kind.canonical.parquet")
    assert twin_a.schema == pa.schema([("id", pa.string()), ("label", pa.string())])
    assert twin_a.column("id").to_pylist() == sorted(truth["id"])
    assert (ra.folder / "shop_kind.canonical.parquet").read_bytes() == (
        rb.folder / "shop_kind.canonical.parquet"
    ).read_bytes(), "one content, one canonical file, whatever the format"
    twin = pq.read_table(rb.folder / "same_item.canonical.parquet")
    assert twin.schema == pa.schema([("pair_id", pa.string()), ("label", pa.int8()), ("score", pa.float64())])
    assert twin.column("score").to_pylist() == [1.0] * 10


def _shop_kind_csv_variants() -> dict[str, bytes]:
    truth = perfect(RELEASE / "private", "shop_kind")
    rows = list(zip(truth["id"], truth["label"]))
    return {
        "quoted": ('"id","label"\n' + "".join(f'"{i}","{lab}"\n' for i, lab in rows)).encode(),
        "no_final_line_end": ("id,label\n" + "\n".join(f"{i},{lab}" for i, lab in rows)).encode(),
        "blank_lines": ("id,label\n\n" + "".join(f"{i},{lab}\n" for i, lab in rows) + "\n\n").encode(),
        "bom_and_crlf": b"\xef\xbb\xbf" + ("id,label\r\n" + "".join(f"{i},{lab}\r\n" for i, lab in rows)).encode(),
    }


@pytest.mark.parametrize("variant", sorted(_shop_kind_csv_variants()))
def test_harmless_csv_variants_are_accepted(tmp_path, contracts, variant):
    """Given a sound CSV written with quotes around every value, without a final line end, with
    blank lines, or with a BOM and CRLF line ends, when submitted, then it is accepted and its
    canonical twin holds the predictions as sent (these are not hostile: they stay out of the corpus)."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "shop_kind.csv").write_bytes(_shop_kind_csv_variants()[variant])
    result = submit(folder, "team-a", submissions_root=tmp_path / "s", contracts=contracts, params=SUBMIT, now=NOW)
    assert result.accepted, result.summary()
    twin = pq.read_table(result.folder / "shop_kind.canonical.parquet").to_pydict()
    truth = sorted(zip(*perfect(RELEASE / "private", "shop_kind").values()))
    assert twin == {"id": [i for i, _ in truth], "label": [lab for _, lab in truth]}


def test_matching_labels_may_be_booleans_in_parquet(tmp_path, contracts):
    pairs = perfect(RELEASE / "private", "same_item")
    folder = tmp_path / "in"
    write_predictions(
        folder, "same_item", {"pair_id": pairs["pair_id"], "label": [bool(v) for v in pairs["label"]]}, "parquet"
    )
    result = submit(folder, "team-a", submissions_root=tmp_path / "s", contracts=contracts, params=SUBMIT, now=NOW)
    assert result.accepted, result.summary()
    twin = pq.read_table(result.folder / "same_item.canonical.parquet")
    assert twin.column("label").type == pa.int8() and twin.column("label").to_pylist() == pairs["label"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "shop_kind (1).csv",
            "not exactly a task name and format; the file was not kept. Fix: rename it to shop_kind.csv",
        ),
        ("shop_kind_v2.parquet", "Fix: rename it to shop_kind.parquet"),
        (
            "same_item.parquet.zip",
            "the file is compressed (.zip); the file was not kept. Fix: decompress it and submit same_item.parquet",
        ),
        ("shop_kind.tsv", "Fix: submit it as shop_kind.csv (comma-separated text) or shop_kind.parquet"),
        ("shop_kindness.csv", "the file name does not name a task of the challenge"),
        (".shop_kind.csv", "a hidden file is not a task file"),
    ],
)
def test_a_file_name_close_to_a_task_name_gets_the_name_to_use(tmp_path, contracts, name, message):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / name).write_text("id,label\n")
    result = submit(folder, "team-a", submissions_root=tmp_path / "s", contracts=contracts, params=SUBMIT, now=NOW)
    assert not result.accepted and message in str(result.errors[0])


def test_a_rejected_submission_keeps_no_canonical_file(tmp_path, predictions, contracts):
    write_predictions(predictions, "shop_kind", {"id": ["s01"], "label": ["nope"]})
    result = submit(predictions, "team-a", submissions_root=tmp_path / "s", contracts=contracts, params=SUBMIT, now=NOW)
    assert not result.accepted and not result.record.canonical
    assert sorted(p.name for p in result.folder.iterdir()) == [REJECTION_META, "same_item.parquet", "shop_kind.csv"]


def test_reserved_names_are_for_the_organisers_only(tmp_path, predictions, contracts):
    root = tmp_path / "submissions"
    with pytest.raises(InputError, match="reserved for the organisers"):
        submit(predictions, "baseline-x", submissions_root=root, contracts=contracts, params=SUBMIT, now=NOW)
    with pytest.raises(ValueError, match="only the organisers choose a submission id"):
        submit(predictions, "team-a", submissions_root=root, contracts=contracts, params=SUBMIT, submission_id="x")
    kw = dict(submissions_root=root, contracts=contracts, params=SUBMIT, now=NOW, organiser=True)
    first = submit(predictions, "baseline-x", name="Baseline X", submission_id="run", **kw)
    assert first.accepted and first.record.baseline and first.folder == root / "baseline-x" / "run"
    write_predictions(predictions, "shop_kind", perfect(RELEASE / "private", "shop_kind"))
    again = submit(predictions, "baseline-x", name="Baseline X", submission_id="run", **kw)
    assert again.accepted and again.record.files != first.record.files, "a rerun replaces the folder whole"
    assert SubmissionRecord.model_validate_json((again.folder / SUBMISSION_META).read_text()) == again.record
    assert count_accepted(root / "baseline-x", "20261105") == (0, 0), "organisers' folders are not team submissions"
    write_predictions(predictions, "shop_kind", {"id": ["s01"], "label": ["nope"]})
    with pytest.raises(InputErrors):
        submit(predictions, "baseline-x", name="Baseline X", submission_id="run", **kw)
    assert SubmissionRecord.model_validate_json((again.folder / SUBMISSION_META).read_text()) == again.record


def test_one_file_may_be_submitted_alone(tmp_path, predictions, contracts):
    result = submit(
        predictions / "shop_kind.csv",
        "team-a",
        submissions_root=tmp_path / "s",
        contracts=contracts,
        params=SUBMIT,
        now=NOW,
    )
    assert result.accepted and result.record.tasks == ["shop_kind"] and result.record.name == "shop-kind"


def test_the_same_content_in_the_same_second_is_recorded_once(tmp_path, predictions, contracts):
    root = tmp_path / "submissions"
    first = submit(predictions, "team-a", submissions_root=root, contracts=contracts, params=SUBMIT, now=NOW)
    again = submit(predictions, "team-a", submissions_root=root, contracts=contracts, params=SUBMIT, now=NOW)
    assert again.accepted and again.duplicate and again.record.submission_id == first.record.submission_id
    assert count_accepted(root / "team-a", "20261105") == (1, 1)
    later = submit(
        predictions,
        "team-a",
        submissions_root=root,
        contracts=contracts,
        params=SUBMIT,
        now=utc("2026-11-05T10:00:01Z"),
    )
    assert later.accepted and not later.duplicate
    assert count_accepted(root / "team-a", "20261105") == (2, 2)


def test_daily_and_total_limits_count_accepted_submissions_only(tmp_path, predictions, contracts):
    root = tmp_path / "submissions"
    params = SUBMIT.model_copy(update={"max_per_day": 2, "max_total": 3})
    broken = tmp_path / "broken"
    write_predictions(broken, "shop_kind", {"id": ["s01"], "label": ["nope"]})
    day1 = [utc(f"2026-11-05T10:00:0{i}Z") for i in range(5)]
    assert not submit(broken, "team-a", submissions_root=root, contracts=contracts, params=params, now=day1[0]).accepted
    assert submit(
        predictions, "team-a", submissions_root=root, contracts=contracts, params=params, now=day1[1]
    ).accepted
    assert submit(
        predictions, "team-a", submissions_root=root, contracts=contracts, params=params, now=day1[2]
    ).accepted
    refused = submit(predictions, "team-a", submissions_root=root, contracts=contracts, params=params, now=day1[3])
    assert not refused.accepted and "the daily limit" in str(refused.errors[0])
    assert (refused.folder / REJECTION_META).is_file() and refused.folder.parent.parent.name == REJECTED_DIR
    other_team = submit(predictions, "team-b", submissions_root=root, contracts=contracts, params=params, now=day1[4])
    assert other_team.accepted, "limits are per team"
    assert submit(
        predictions,
        "team-a",
        submissions_root=root,
        contracts=contracts,
        params=params,
        now=utc("2026-11-06T00:00:00Z"),
    ).accepted, "a new UTC day"
    total = submit(
        predictions,
        "team-a",
        submissions_root=root,
        contracts=contracts,
        params=params,
        now=utc("2026-11-07T00:00:00Z"),
    )
    assert not total.accepted and "the limit for the whole challenge" in str(total.errors[0])
    assert count_accepted(root / "team-a", "20261105") == (2, 3)


def test_a_failure_while_storing_leaves_nothing_behind(tmp_path, predictions, contracts, monkeypatch):
    root = tmp_path / "submissions"

    def broken_rename(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("tasks.submissions.submit.os.rename", broken_rename)
    with pytest.raises(OSError):
        submit(predictions, "team-a", submissions_root=root, contracts=contracts, params=SUBMIT, now=NOW)
    assert not (root / "team-a").exists() or not any((root / "team-a").iterdir())
    assert not any((root / STAGING_DIR).iterdir())


def test_links_and_special_files_are_not_read(tmp_path, predictions, contracts):
    folder = tmp_path / "sneaky"
    folder.mkdir()
    (folder / "shop_kind.csv").symlink_to(RELEASE / "private" / "shop_kind" / "test_labels.parquet")
    os.mkfifo(folder / "same_item.csv")
    result = submit(folder, "team-a", submissions_root=tmp_path / "s", contracts=contracts, params=SUBMIT, now=NOW)
    text = "\n".join(str(e) for e in result.errors)
    assert not result.accepted
    assert "shop_kind.csv: the entry is a link" in text and "same_item.csv: the entry is not a regular file" in text
    assert result.record.files == {}


def test_arguments_that_name_nothing_storable_raise(tmp_path, predictions, contracts):
    kwargs = dict(submissions_root=tmp_path / "s", contracts=contracts, params=SUBMIT, now=NOW)
    with pytest.raises(InputError, match="does not exist"):
        submit(tmp_path / "nope", "team-a", **kwargs)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="is empty"):
        submit(tmp_path / "empty", "team-a", **kwargs)
    with pytest.raises(InputError, match="characters, more than 10"):
        submit(
            predictions,
            "team-a",
            **kwargs | {"params": SUBMIT.model_copy(update={"max_description_chars": 10})},
            description="x" * 11,
        )
    assert not (tmp_path / "s").exists() or not any(p.is_file() for p in (tmp_path / "s").rglob("*.csv"))


def test_default_names_are_slugs(tmp_path):
    (tmp_path / "My Preds_v2").mkdir()
    assert default_name(tmp_path / "My Preds_v2") == "my-preds-v2"
    assert default_name(tmp_path / "___") == "submission"


# --- concurrency ------------------------------------------------------------------------------


def _project_params(tmp_path: Path, **submit_overrides) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["challenge"]["tasks"] = TASKS
    params["challenge"]["phases"] = []  # open from opens_at, for ever: these tests run at the real time
    params["submit"] |= submit_overrides
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _fifty_folders(tmp_path: Path, teams: int) -> list[tuple[str, Path]]:
    jobs = []
    for i in range(50):
        folder = tmp_path / "in" / f"sub{i:02d}"
        columns = perfect(RELEASE / "private", "same_item")
        columns["score"] = [round((i + 1) / 100 + j / 1000, 6) for j in range(10)]  # distinct content per call
        write_predictions(folder, "same_item", columns)
        jobs.append((f"team-{i % teams}", folder))
    return jobs


def _check_fifty(root: Path, teams: int, per_team_accepted: int) -> None:
    accepted = Counter()
    rejected = Counter()
    for meta in root.glob(f"*/*/{SUBMISSION_META}"):
        accepted[meta.parent.parent.name] += 1
    for meta in root.glob(f"{REJECTED_DIR}/*/*/{REJECTION_META}"):
        reasons = json.loads(meta.read_text())["reasons"]
        assert "limit" in reasons[0]["problem"]
        rejected[meta.parent.parent.name] += 1
    assert sum(accepted.values()) + sum(rejected.values()) == 50, "every call recorded, exactly once"
    for t in range(teams):
        assert accepted[f"team-{t}"] == per_team_accepted, "no team gets past its limit"
        assert accepted[f"team-{t}"] + rejected[f"team-{t}"] == 50 // teams
    assert not any((root / STAGING_DIR).iterdir())


def test_fifty_concurrent_submits_are_each_recorded_exactly_once(tmp_path, capsys):
    """50 threads run `mmtc submit` at once: 5 teams of 10 calls, a daily limit of 8."""
    params = _project_params(tmp_path, max_per_day=8)
    root = tmp_path / "submissions"
    jobs = _fifty_folders(tmp_path, teams=5)
    codes = [None] * 50
    start = threading.Barrier(50)

    def run(i: int, team: str, folder: Path) -> None:
        start.wait()
        codes[i] = cli.main(
            [
                "--params",
                str(params),
                "submit",
                "--team",
                team,
                "--submissions",
                str(root),
                "--public",
                str(RELEASE / "public"),
                str(folder),
            ]
        )

    threads = [threading.Thread(target=run, args=(i, team, folder)) for i, (team, folder) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(Counter(codes).items()) == [(0, 40), (2, 10)]
    _check_fifty(root, teams=5, per_team_accepted=8)


@pytest.mark.slow
def test_fifty_concurrent_submit_processes(tmp_path):
    """The same with 50 separate `mmtc submit` processes (the lock is a file lock, not a mutex)."""
    params = _project_params(tmp_path, max_per_day=4)
    root = tmp_path / "submissions"
    jobs = _fifty_folders(tmp_path, teams=10)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tasks.cli",
                "--params",
                str(params),
                "submit",
                "--team",
                team,
                "--submissions",
                str(root),
                "--public",
                str(RELEASE / "public"),
                str(folder),
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for team, folder in jobs
    ]
    codes = [p.wait(timeout=600) for p in procs]
    assert Counter(codes) == Counter({0: 40, 2: 10})
    _check_fifty(root, teams=10, per_team_accepted=4)
    shutil.rmtree(tmp_path / "in")


def test_rejections_are_capped_per_team_and_day_and_their_stored_bytes(tmp_path, predictions, contracts):
    """Given caps of 3 rejections a day and 1 KB of rejected files, when a team sends broken files
    again and again, then the first within the byte cap keep their files, later ones keep their
    reasons only, past the daily cap nothing is stored, and an accepted submission still goes in."""
    root = tmp_path / "submissions"
    params = SUBMIT.model_copy(update={"max_rejected_per_day": 3, "max_rejected_mb": 1000 / (1 << 20)})
    broken = tmp_path / "broken"
    write_predictions(broken, "shop_kind", {"id": [f"x{i:03d}" for i in range(40)], "label": ["nope"] * 40})
    size = (broken / "shop_kind.csv").stat().st_size
    assert 500 < size <= 1000, "one broken file fits the byte cap, two do not"
    results = [
        submit(
            broken,
            "team-a",
            submissions_root=root,
            contracts=contracts,
            params=params,
            now=utc(f"2026-11-05T10:00:0{i}Z"),
        )
        for i in range(5)
    ]
    assert [r.recorded for r in results] == [True, True, True, False, False]
    assert [r.files_kept for r in results[:3]] == [True, False, False]
    assert all(not r.accepted and r.errors for r in results)
    stored = sorted((root / REJECTED_DIR / "team-a").iterdir())
    assert len(stored) == 3
    assert sorted(p.name for p in stored[0].iterdir()) == [REJECTION_META, "shop_kind.csv"]
    for folder in stored[1:]:
        assert [p.name for p in folder.iterdir()] == [REJECTION_META]
        assert json.loads((folder / REJECTION_META).read_text())["files_kept"] is False
    assert "not recorded: the team's daily cap of rejected submissions is reached" in results[3].summary()
    assert "reasons only" in results[1].summary()
    assert submit(predictions, "team-a", submissions_root=root, contracts=contracts, params=params, now=NOW).accepted
    assert submit(broken, "team-b", submissions_root=root, contracts=contracts, params=params, now=NOW).recorded, (
        "caps are per team"
    )
    assert submit(
        broken, "team-a", submissions_root=root, contracts=contracts, params=params, now=utc("2026-11-06T09:00:00Z")
    ).recorded, "a new UTC day"
