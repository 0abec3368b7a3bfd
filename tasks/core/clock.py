"""The challenge's clock: what time it is, which phase is open, whether the challenge is closed.

`utc_now()` is the one place that reads the time. It honours `MMTC_NOW` (an ISO 8601 UTC time,
e.g. `2027-02-01T00:00:00Z`) so that tests, demos and an organiser rehearsing a close can fix
"now"; the CLI commands that read it (`mmtc submit`, `select`, `intake`, `leaderboard`) say so
in their help. Stage functions never call it: they take `now` as an argument.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from tasks.core.errors import InputError
from tasks.core.params import ChallengeParams, Phase, parse_utc

NOW_ENV = "MMTC_NOW"


def utc_now(env: Mapping[str, str] | None = None) -> datetime:
    """Now, in UTC to the second; `MMTC_NOW` when it is set."""
    env = os.environ if env is None else env
    fixed = env.get(NOW_ENV)
    if fixed:
        try:
            return parse_utc(fixed, NOW_ENV)
        except ValueError as exc:
            raise InputError(
                problem=str(exc), fix=f"unset {NOW_ENV} or give a time like 2027-02-01T00:00:00Z"
            ) from None
    return datetime.now(UTC).replace(microsecond=0)


def phase_at(phases: Sequence[Phase], when: datetime) -> Phase | None:
    return next((p for p in phases if p.contains(when)), None)


def describe_schedule(phases: Sequence[Phase]) -> str:
    """'development 2026-11-01T00:00:00Z to 2027-01-31T00:00:00Z; final ...', for messages."""
    return "; ".join(f"{p.name} {p.dates()}" for p in phases)


@dataclass(frozen=True)
class ChallengeState:
    """Where the challenge stands at `now`."""

    now: datetime
    phase: Phase | None  # the open phase, if any
    next_phase: Phase | None  # the next one to open, if any
    closed: bool  # challenge.closed, or the last phase has ended
    closed_reason: str | None

    def line(self) -> str:
        """One line for the board and the CLI."""
        if self.closed:
            return f"closed ({self.closed_reason}): final ranks follow the private scores"
        if self.phase is not None:
            ends = f"ends {self.phase.end}" if self.phase.end else "no end set"
            return f"phase {self.phase.name} ({ends})"
        if self.next_phase is not None:
            return f"between phases: {self.next_phase.name} opens {self.next_phase.start}"
        return "no phase open"


def challenge_state(challenge: ChallengeParams, now: datetime) -> ChallengeState:
    phases = challenge.schedule()
    phase = phase_at(phases, now)
    upcoming = [p for p in phases if p.starts > now]
    last_end = phases[-1].ends
    if challenge.closed:
        closed, reason = True, "challenge.closed is true"
    elif last_end is not None and now >= last_end:
        closed, reason = True, f"the last phase, {phases[-1].name}, ended {phases[-1].end}"
    else:
        closed, reason = False, None
    return ChallengeState(now, None if closed else phase, upcoming[0] if upcoming else None, closed, reason)
