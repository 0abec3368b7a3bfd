"""The inbox: every upload ends recorded (accepted or rejected) before it leaves, or stays and is
reported; links are never followed nor deleted; names never cause a rejection by themselves."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from tasks import cli
from tasks.core.clock import NOW_ENV
from tasks.core.schema import INVALID_TEAM_DIR, REJECTED_DIR, REJECTION_META, SUBMISSION_META
from tasks.submissions.intake import CLAIMS_DIR, folders_to_version, take_in
from tasks.submissions.submit import submit
from tasks.submissions.validate import load_contracts
from tests.conftest import ROOT
from tests.scoring_support import RELEASE, SUBMIT, TASKS, perfect, utc, write_predictions

NOW = utc("2026-11-20T03:00:00Z")


@pytest.fixture(scope="module")
def contracts():
    return load_contracts(RELEASE / "public", TASKS)


def good(folder, flip=1):
    write_predictions(folder, "shop_kind", perfect(RELEASE / "private", "shop_kind", flip=flip))
    return folder


def intake(tmp_path, contracts, **kw):
    return take_in(tmp_path / "inbox", tmp_path / "subs", contracts=contracts, params=SUBMIT, now=NOW, **kw)


def records(root):
    return sorted(p.parent for p in root.rglob("*.json") if p.name in (SUBMISSION_META, REJECTION_META))


def test_a_file_named_like_its_task_and_a_folder_are_accepted_and_leave_the_inbox(tmp_path, contracts):
    inbox = tmp_path / "inbox"
    good(inbox / "team-a")  # inbox/team-a/shop_kind.csv: its name, shop_kind, is not a slug
    good(inbox / "team-b" / "My Best Try!", flip=2)
    report = intake(tmp_path, contracts)
    assert [o.status for o in report.outcomes] == ["accepted", "accepted"], report.summary()
    a = json.loads((tmp_path / "subs" / report.outcomes[0].record / SUBMISSION_META).read_text())
    assert a["name"] == "shop-kind", "the name is derived from the file name"
    b = json.loads((tmp_path / "subs" / report.outcomes[1].record / SUBMISSION_META).read_text())
    assert b["name"] == "my-best-try"
    assert not list((inbox / "team-a").iterdir()) and not list((inbox / "team-b").iterdir())
    assert report.changed == ["team-a", "team-b"]


def test_a_bad_team_name_is_a_recorded_rejection_with_the_files_kept(tmp_path, contracts):
    good(tmp_path / "inbox" / "Bad_Team")
    good(tmp_path / "inbox" / "baseline-me")
    good(tmp_path / "inbox" / "one-rule")
    report = intake(tmp_path, contracts, reserved_teams=["one-rule"])
    assert [o.status for o in report.outcomes] == ["rejected"] * 3, report.summary()
    folders = sorted((tmp_path / "subs" / REJECTED_DIR / INVALID_TEAM_DIR).iterdir())
    assert len(folders) == 3, "all three filed where a bad name cannot name a folder"
    teams = set()
    for folder in folders:
        data = json.loads((folder / REJECTION_META).read_text())
        teams.add(data["team"])
        assert (folder / "shop_kind.csv").is_file(), "the upload's files are kept with the record"
    assert teams == {"Bad_Team", "baseline-me", "one-rule"}, "the name as given is recorded"
    messages = " ".join(o.reason for o in report.outcomes)
    assert "not a slug" in messages and "reserved for the organisers' baselines" in messages
    assert "reserved for a demo team" in messages
    assert report.changed == [f"{REJECTED_DIR}/{INVALID_TEAM_DIR}"]


def test_bad_content_and_an_empty_folder_are_recorded_rejections(tmp_path, contracts):
    inbox = tmp_path / "inbox" / "team-a"
    (inbox / "empty").mkdir(parents=True)
    (inbox / "shop_kind.csv").write_text("id,label\n1,nope\n")
    report = intake(tmp_path, contracts)
    assert [o.status for o in report.outcomes] == ["rejected", "rejected"], report.summary()
    assert "is empty" in report.outcomes[0].reason
    assert len(records(tmp_path / "subs")) == 2 and not list(inbox.iterdir())


def test_links_anywhere_are_refused_never_followed_nor_deleted(tmp_path, contracts):
    outside = good(tmp_path / "outside")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "linked-team").symlink_to(outside, target_is_directory=True)
    (inbox / "team-a").mkdir()
    (inbox / "team-a" / "linked.csv").symlink_to(outside / "shop_kind.csv")
    good(inbox / "team-a" / "folder")
    (inbox / "team-a" / "folder" / "same_item.csv").symlink_to(outside / "shop_kind.csv")
    report = intake(tmp_path, contracts)
    assert [o.status for o in report.outcomes] == ["kept"] * 3, report.summary()
    assert all("link" in o.reason for o in report.outcomes)
    assert (inbox / "linked-team").is_symlink() and (inbox / "team-a" / "linked.csv").is_symlink()
    assert (inbox / "team-a" / "folder" / "same_item.csv").is_symlink()
    assert (outside / "shop_kind.csv").is_file(), "the link target is untouched"
    assert records(tmp_path / "subs") == [], "nothing was submitted through a link"

    linked_inbox = tmp_path / "linked-inbox"
    linked_inbox.symlink_to(inbox, target_is_directory=True)
    report = take_in(linked_inbox, tmp_path / "subs", contracts=contracts, params=SUBMIT, now=NOW)
    assert [o.status for o in report.outcomes] == ["kept"] and "link" in report.outcomes[0].reason


def test_a_crashed_submit_leaves_the_upload_and_is_reported(tmp_path, contracts):
    good(tmp_path / "inbox" / "team-a")

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")

    report = intake(tmp_path, contracts, submit_fn=crash)
    (outcome,) = report.outcomes
    assert outcome.status == "kept" and "OSError" in outcome.reason and "No space left" in outcome.reason
    assert (tmp_path / "inbox" / "team-a" / "shop_kind.csv").is_file()

    def no_record(*args, **kwargs):
        result = submit(*args, **kwargs)
        (result.folder / SUBMISSION_META).unlink()  # a record that vanished (a disk that lied)
        return result

    report = intake(tmp_path, contracts, submit_fn=no_record)
    assert report.outcomes[0].status == "kept" and "no record" in report.outcomes[0].reason
    assert (tmp_path / "inbox" / "team-a" / "shop_kind.csv").is_file()
    report = take_in(
        tmp_path / "inbox", tmp_path / "subs", contracts=contracts, params=SUBMIT, now=utc("2026-11-21T03:00:00Z")
    )
    assert report.outcomes[0].status == "accepted", "taken in on the next night"


def test_hidden_and_misplaced_entries_stay(tmp_path, contracts):
    inbox = tmp_path / "inbox"
    good(inbox / "team-a")
    os.rename(inbox / "team-a" / "shop_kind.csv", inbox / "team-a" / ".shop_kind.csv.part")
    (inbox / "stray.csv").write_text("x\n")
    report = intake(tmp_path, contracts)
    assert [o.status for o in report.outcomes] == ["kept", "kept"], report.summary()
    assert (inbox / "stray.csv").is_file() and (inbox / "team-a" / ".shop_kind.csv.part").is_file()


def test_out_of_phase_uploads_are_recorded_rejections(tmp_path, contracts):
    from tasks.core.params import ChallengeParams

    phases = ChallengeParams(
        name="c",
        opens_at="2026-11-01T00:00:00Z",
        tasks=TASKS,
        phases=[{"name": "development", "start": "2026-11-01T00:00:00Z", "end": "2026-11-15T00:00:00Z"}],
    ).schedule()
    good(tmp_path / "inbox" / "team-a")
    report = intake(tmp_path, contracts, phases=phases)
    assert report.outcomes[0].status == "rejected" and "no phase is open" in report.outcomes[0].reason


def test_folders_to_version_leave_stage_outputs_out(tmp_path):
    (tmp_path / "_final" / "team-a").mkdir(parents=True)
    (tmp_path / "_final" / "one-rule").mkdir()
    got = folders_to_version(tmp_path, ["team-b", "_rejected/team-b", "one-rule"], outputs=["one-rule"])
    assert got == [tmp_path / p for p in ("_final/one-rule", "_final/team-a", "_rejected/team-b", "team-b")]


def test_mmtc_intake(tmp_path, contracts, monkeypatch, capsys):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["challenge"]["tasks"] = TASKS
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    good(tmp_path / "inbox" / "team-a")
    good(tmp_path / "inbox" / "Bad_Team")
    monkeypatch.setenv(NOW_ENV, "2026-11-20T03:00:00Z")
    argv = ["--params", str(tmp_path / "params.yaml"), "intake", "--inbox", str(tmp_path / "inbox")]
    argv += ["--submissions", str(tmp_path / "subs"), "--public", str(RELEASE / "public"), "--no-version"]
    assert cli.main([*argv, "--report", str(tmp_path / "report.json")]) == 0
    out = capsys.readouterr().out
    assert "intake: 1 accepted, 1 rejected (both recorded), 0 kept in the inbox" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["accepted"] == ["team-a/shop_kind.csv"] and report["rejected"] == ["Bad_Team/shop_kind.csv"]
    assert (tmp_path / "subs" / "team-a").is_dir()


def test_past_the_daily_cap_of_rejections_an_upload_stays_in_the_inbox(tmp_path, contracts):
    """submit() records no rejection past submit.max_rejected_per_day: the intake keeps the upload."""
    inbox = tmp_path / "inbox" / "team-a"
    for i in range(3):
        (inbox / f"try-{i}").mkdir(parents=True)
        (inbox / f"try-{i}" / "shop_kind.csv").write_text(f"id,label\n{i},nope\n")
    capped = SUBMIT.model_copy(update={"max_rejected_per_day": 2})
    report = take_in(tmp_path / "inbox", tmp_path / "subs", contracts=contracts, params=capped, now=NOW)
    assert [o.status for o in report.outcomes] == ["rejected", "rejected", "kept"], report.summary()
    assert "max_rejected_per_day" in report.outcomes[2].reason
    assert (inbox / "try-2" / "shop_kind.csv").is_file(), "the upload past the cap is not lost"
    assert len(records(tmp_path / "subs")) == 2


def _claims(tmp_path):
    folder = tmp_path / "inbox" / CLAIMS_DIR
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_a_claim_left_by_a_killed_run_after_its_record_is_not_recorded_twice(tmp_path, contracts):
    """Killed between submit()'s record and the claim's removal: the next run, later, finds the record."""
    good(tmp_path / "inbox" / "team-a" / "try")

    def killed_after_record(*args, **kwargs):
        submit(*args, **kwargs)
        raise KeyboardInterrupt  # stands for SIGKILL: nothing after the record runs

    with pytest.raises(KeyboardInterrupt):
        intake(tmp_path, contracts, submit_fn=killed_after_record)
    assert len(records(tmp_path / "subs")) == 1
    (claim,) = _claims(tmp_path)
    assert (claim / "files" / "try" / "shop_kind.csv").is_file(), "the upload waits in its claim"
    later = utc("2026-11-21T03:00:00Z")
    report = take_in(tmp_path / "inbox", tmp_path / "subs", contracts=contracts, params=SUBMIT, now=later)
    (outcome,) = report.outcomes
    assert outcome.status == "accepted" and "interrupted" in outcome.reason, report.summary()
    assert len(records(tmp_path / "subs")) == 1, "recorded once"
    assert outcome.record.startswith("team-a/20261120T030000Z-"), "at the time of the run that took it"
    assert _claims(tmp_path) == [] and not list((tmp_path / "inbox" / "team-a").iterdir())


def test_a_claim_left_before_its_record_is_submitted_at_its_own_time(tmp_path, contracts):
    good(tmp_path / "inbox" / "team-a" / "try")

    def killed_before_record(*args, **kwargs):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        intake(tmp_path, contracts, submit_fn=killed_before_record, closed=False)
    assert records(tmp_path / "subs") == []
    later = utc("2026-11-21T03:00:00Z")
    report = take_in(tmp_path / "inbox", tmp_path / "subs", contracts=contracts, params=SUBMIT, now=later, closed=True)
    (outcome,) = report.outcomes
    assert outcome.status == "accepted", "taken in while open: the close after it does not reject it"
    assert outcome.record.startswith("team-a/20261120T030000Z-")
    assert _claims(tmp_path) == []


def test_empty_claims_are_removed_and_a_put_back_upload_never_replaces_a_new_one(tmp_path, contracts):
    inbox = tmp_path / "inbox"
    (inbox / CLAIMS_DIR / "20261119T030000Z-aaaa" / "files").mkdir(parents=True)  # killed before the move
    (inbox / CLAIMS_DIR / "20261119T030000Z-bbbb").mkdir()  # killed before its note was written
    good(inbox / "team-a")
    sent = (inbox / "team-a" / "shop_kind.csv").read_bytes()

    def crash_after_a_new_upload(source, team, **kwargs):
        (inbox / team / "shop_kind.csv").write_text("id,label\n")  # the team sends another meanwhile
        raise OSError(28, "No space left on device")

    report = intake(tmp_path, contracts, submit_fn=crash_after_a_new_upload)
    (outcome,) = report.outcomes
    assert outcome.status == "kept" and outcome.upload == "team-a/shop_kind-retry-1/shop_kind.csv", report.summary()
    assert (inbox / "team-a" / "shop_kind-retry-1" / "shop_kind.csv").read_bytes() == sent
    assert (inbox / "team-a" / "shop_kind.csv").read_text() == "id,label\n"
    assert _claims(tmp_path) == []
