"""The challenge's clock: phases in params, the phase open at a time, the close, MMTC_NOW."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from tasks.core.clock import NOW_ENV, challenge_state, describe_schedule, phase_at, utc_now
from tasks.core.errors import InputError
from tasks.core.params import ChallengeParams, load_params
from tests.conftest import ROOT


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def challenge(phases, closed=False, tasks=("a", "b")) -> ChallengeParams:
    return ChallengeParams(name="c", opens_at="2026-11-01T00:00:00Z", closed=closed, tasks=list(tasks), phases=phases)


TWO = [
    {"name": "development", "start": "2026-11-01T00:00:00Z", "end": "2027-01-31T00:00:00Z"},
    {"name": "final", "start": "2027-02-01T00:00:00Z", "end": "2027-02-28T00:00:00Z", "tasks": ["a"], "max_per_day": 2},
]


def test_the_phase_open_at_a_time_start_included_end_excluded():
    phases = challenge(TWO).schedule()
    assert phase_at(phases, at("2026-11-01T00:00:00Z")).name == "development"
    assert phase_at(phases, at("2027-01-30T23:59:59Z")).name == "development"
    assert phase_at(phases, at("2027-01-31T00:00:00Z")) is None, "between the phases"
    assert phase_at(phases, at("2027-02-01T00:00:00Z")).name == "final"
    assert phase_at(phases, at("2027-02-28T00:00:00Z")) is None
    assert describe_schedule(phases) == (
        "development 2026-11-01T00:00:00Z to 2027-01-31T00:00:00Z; final 2027-02-01T00:00:00Z to 2027-02-28T00:00:00Z"
    )


def test_without_phases_one_open_ended_phase_from_the_opening():
    phases = challenge([]).schedule()
    assert [(p.name, p.start, p.end, p.tasks) for p in phases] == [("open", "2026-11-01T00:00:00Z", None, None)]
    assert phase_at(phases, at("2031-01-01T00:00:00Z")).name == "open"
    assert phase_at(phases, at("2026-10-31T23:59:59Z")) is None
    assert not challenge_state(challenge([]), at("2031-01-01T00:00:00Z")).closed


def test_the_end_of_the_last_phase_or_the_flag_closes_the_challenge():
    c = challenge(TWO)
    assert challenge_state(c, at("2027-01-05T00:00:00Z")).line() == "phase development (ends 2027-01-31T00:00:00Z)"
    between = challenge_state(c, at("2027-01-31T12:00:00Z"))
    assert not between.closed and between.line() == "between phases: final opens 2027-02-01T00:00:00Z"
    after = challenge_state(c, at("2027-02-28T00:00:00Z"))
    assert after.closed and after.phase is None and "final, ended 2027-02-28T00:00:00Z" in after.closed_reason
    flagged = challenge_state(challenge(TWO, closed=True), at("2026-12-01T00:00:00Z"))
    assert flagged.closed and flagged.closed_reason == "challenge.closed is true"


@pytest.mark.parametrize(
    "phases, message",
    [
        ([{"name": "a", "start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"}], "is not after start"),
        ([{"name": "a", "start": "2026-11-02 00:00", "end": None}], "must be in UTC"),
        ([{"name": "a", "start": "2026-11-02T00:00:00+02:00", "end": None}], "must be in UTC"),
        ([{"name": "a", "start": "yesterday", "end": None}], "is not a time"),
        (
            [
                {"name": "a", "start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
                {"name": "b", "start": "2026-11-15T00:00:00Z", "end": None},
            ],
            "before the previous phase ends",
        ),
        (
            [
                {"name": "a", "start": "2026-11-01T00:00:00Z", "end": None},
                {"name": "b", "start": "2026-12-01T00:00:00Z", "end": None},
            ],
            "only the last phase may be open-ended",
        ),
        ([{"name": "a", "start": "2026-11-01T00:00:00Z", "tasks": ["zzz"]}], "not in challenge.tasks"),
        ([{"name": "Dev Phase", "start": "2026-11-01T00:00:00Z"}], "String should match pattern"),
        (
            [
                {"name": "a", "start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"},
                {"name": "a", "start": "2026-11-03T00:00:00Z"},
            ],
            "used by an earlier phase",
        ),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_phase(phases, message):
    with pytest.raises(ValidationError, match=message):
        challenge(phases)


def test_mmtc_now_fixes_the_time_and_a_bad_value_is_refused():
    assert utc_now({NOW_ENV: "2027-02-01T10:00:00Z"}) == at("2027-02-01T10:00:00Z")
    assert utc_now({}).tzinfo is not None and utc_now({}).microsecond == 0
    with pytest.raises(InputError, match="MMTC_NOW"):
        utc_now({NOW_ENV: "tomorrow"})


def test_the_demo_schedule_covers_every_demo_submission_and_starts_at_the_opening():
    params = load_params(ROOT / "params.yaml")
    phases = params.challenge.schedule()
    assert phases[0].start == params.challenge.opens_at, "baselines are dated at the opening: inside the first phase"
    opens = at(params.challenge.opens_at)
    for plan in params.demo_teams.teams.values():
        for day in plan.days:
            assert phase_at(phases, opens + timedelta(days=day, hours=20)) is not None
