"""submit() and the schedule: outside every phase, a task not open, closed, a phase's own limits."""

from __future__ import annotations

import json

import pytest

from tasks.core.params import ChallengeParams
from tasks.core.schema import REJECTED_DIR, REJECTION_META
from tasks.submissions.submit import submit
from tasks.submissions.validate import load_contracts
from tests.scoring_support import RELEASE, SUBMIT, TASKS, perfect, utc, write_predictions

PHASES = ChallengeParams(
    name="c",
    opens_at="2026-11-01T00:00:00Z",
    tasks=TASKS,
    phases=[
        {"name": "development", "start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z", "max_total": 2},
        {
            "name": "final",
            "start": "2026-12-02T00:00:00Z",
            "end": "2026-12-10T00:00:00Z",
            "tasks": ["shop_kind"],
            "max_per_day": 1,
        },
    ],
).schedule()


@pytest.fixture(scope="module")
def contracts():
    return load_contracts(RELEASE / "public", TASKS)


def preds(tmp_path, flip: int, tasks=("shop_kind",)):
    folder = tmp_path / f"p{flip}-{'-'.join(tasks)}"
    for task in tasks:
        write_predictions(folder, task, perfect(RELEASE / "private", task, flip=flip))
    return folder


def send(tmp_path, contracts, when, flip=1, tasks=("shop_kind",), closed=False):
    return submit(
        preds(tmp_path, flip, tasks),
        "team-a",
        submissions_root=tmp_path / "subs",
        contracts=contracts,
        params=SUBMIT,
        now=utc(when),
        phases=PHASES,
        closed=closed,
    )


def reasons(result) -> list[str]:
    data = json.loads((result.folder / REJECTION_META).read_text())
    return [r["message"] for r in data["reasons"]]


def test_a_submission_outside_every_phase_is_recorded_as_rejected_naming_the_dates(tmp_path, contracts):
    for when in ("2026-10-31T23:59:59Z", "2026-12-01T00:00:00Z", "2026-12-10T00:00:00Z"):
        result = send(tmp_path, contracts, when)
        assert not result.accepted
        assert result.folder.parent == tmp_path / "subs" / REJECTED_DIR / "team-a", "recorded, not just refused"
        (message,) = reasons(result)
        assert f"no phase is open at {when}" in message
        assert "development 2026-11-01T00:00:00Z to 2026-12-01T00:00:00Z" in message
        assert "final 2026-12-02T00:00:00Z to 2026-12-10T00:00:00Z" in message
        assert (result.folder / "shop_kind.csv").is_file(), "the files are kept with the record"


def test_a_task_not_open_in_the_phase_is_refused(tmp_path, contracts):
    result = send(tmp_path, contracts, "2026-12-03T10:00:00Z", tasks=("shop_kind", "same_item"))
    assert not result.accepted
    (message,) = reasons(result)
    assert "same_item are not open in phase final (2026-12-02T00:00:00Z to 2026-12-10T00:00:00Z)" in message
    assert send(tmp_path, contracts, "2026-12-03T10:00:00Z").accepted, "the open task alone is taken"


def test_nothing_is_taken_once_closed(tmp_path, contracts):
    result = send(tmp_path, contracts, "2026-11-05T10:00:00Z", closed=True)
    assert not result.accepted and "the challenge is closed" in reasons(result)[0]


def test_a_phase_s_own_limits_replace_the_challenge_s(tmp_path, contracts):
    # development: max_total 2 counted within the phase (submit's max_per_day 5 still holds per day)
    assert send(tmp_path, contracts, "2026-11-05T10:00:00Z", flip=1).accepted
    assert send(tmp_path, contracts, "2026-11-06T10:00:00Z", flip=2).accepted
    third = send(tmp_path, contracts, "2026-11-07T10:00:00Z", flip=3)
    assert not third.accepted and "the limit of phase development" in reasons(third)[0]
    # final: its own count (the development ones do not count) and max_per_day 1
    assert send(tmp_path, contracts, "2026-12-03T10:00:00Z", flip=4).accepted
    again = send(tmp_path, contracts, "2026-12-03T11:00:00Z", flip=5)
    assert not again.accepted and "the daily limit in phase final" in reasons(again)[0]
    assert send(tmp_path, contracts, "2026-12-04T10:00:00Z", flip=5).accepted


def test_without_a_schedule_submit_checks_no_dates(tmp_path, contracts):
    result = submit(
        preds(tmp_path, 1),
        "team-a",
        submissions_root=tmp_path / "subs",
        contracts=contracts,
        params=SUBMIT,
        now=utc("2020-01-01T00:00:00Z"),
    )
    assert result.accepted


def test_mmtc_submit_checks_the_phases_at_mmtc_now(tmp_path, monkeypatch, capsys):
    import yaml

    from tasks import cli
    from tasks.core.clock import NOW_ENV
    from tests.conftest import ROOT

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["challenge"]["tasks"] = TASKS
    params["challenge"]["phases"] = [
        {"name": "development", "start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}
    ]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    argv = ["--params", str(tmp_path / "params.yaml"), "submit", "--team", "team-a"]
    argv += ["--submissions", str(tmp_path / "subs"), "--public", str(RELEASE / "public"), str(preds(tmp_path, 1))]
    monkeypatch.setenv(NOW_ENV, "2026-12-01T00:00:00Z")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert (
        "rejected team-a/20261201T000000Z-" in err and "development 2026-11-01T00:00:00Z to 2026-12-01T00:00:00Z" in err
    )
    assert len(list((tmp_path / "subs" / REJECTED_DIR / "team-a").iterdir())) == 1, "recorded as rejected"
    monkeypatch.setenv(NOW_ENV, "2026-11-30T23:59:59Z")
    assert cli.main(argv) == 0
