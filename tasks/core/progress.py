"""Progress you can watch: a bar on a terminal, a log line every few seconds everywhere else.

tqdm draws a bar only on a terminal and, left to decide (`disable=None`), stays silent without
one, which is always the case under DVC and Prefect: the ten minutes of embedding and tuning
then showed nothing at all. `Progress` keeps tqdm's bar where there is a terminal and writes
a plain line instead where there is none, at most every `every_s` seconds (and once at the
end): what is done out of what, the rate, the time spent and the time left.

    embed product_type image photo: 704/2250 img (31%), 10.9 img/s, 1m05s spent, ~2m22s left

The interval is a display setting, not an input of any stage: the flows pass
`orchestration.progress_every_s` down in the environment (MMTC_PROGRESS_EVERY_S), so changing
it reruns nothing; 0 silences the lines.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm

PROGRESS_EVERY_ENV = "MMTC_PROGRESS_EVERY_S"
DEFAULT_EVERY_S = 5.0


def progress_every_s() -> float:
    """Seconds between two progress lines: MMTC_PROGRESS_EVERY_S when set and valid, else the default."""
    raw = os.environ.get(PROGRESS_EVERY_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_EVERY_S
    except ValueError:
        return DEFAULT_EVERY_S
    return value if value >= 0 else DEFAULT_EVERY_S


def duration(seconds: float) -> str:
    """'42s', '3m05s', '1h02m': short enough for a log line."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """Counts items done out of `total` and shows it: a tqdm bar on a TTY, else throttled lines.

    `budget_s` (a time limit the work stops at, such as a tuning budget) caps the time left
    that is shown. `note` on an update (e.g. the best score so far) is shown with the next line.
    """

    def __init__(
        self,
        what: str,
        total: int | None,
        unit: str = "it",
        *,
        every_s: float | None = None,
        budget_s: float | None = None,
        stream: TextIO | None = None,
        enabled: bool = True,
        bar: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what, self.total, self.unit = what, total, unit
        self.every_s = progress_every_s() if every_s is None else every_s
        self.budget_s = budget_s
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.done = 0
        self.note = ""
        self.start = self.last = clock()
        self.enabled = enabled
        is_tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar = (
            tqdm(total=total, desc=what, unit=unit, file=self.stream, mininterval=0.5, dynamic_ncols=True)
            if enabled and (is_tty if bar is None else bar)
            else None
        )
        self.closed = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1, note: str | None = None) -> None:
        self.done += n
        if note is not None:
            self.note = note
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(n)
            if note is not None:
                self.bar.set_postfix_str(note, refresh=False)
            return
        now = self.clock()
        if self.every_s > 0 and now - self.last >= self.every_s:
            self.last = now
            self._line(now)

    def tick(self, note: str) -> None:
        """Nothing new is done, but say where the work is (a long trial: its fold and iteration)."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(note)
            return
        now = self.clock()
        if self.every_s > 0 and now - self.last >= self.every_s:
            self.last = now
            saved, self.note = self.note, note
            self._line(now)
            self.note = saved

    def line(self, now: float | None = None) -> str:
        """The line shown for the current state."""
        now = self.clock() if now is None else now
        spent = now - self.start
        rate = self.done / spent if spent > 0 else 0.0
        parts = [f"{self.what}: {self.done}" + (f"/{self.total}" if self.total else "") + f" {self.unit}"]
        if self.total:
            parts[0] += f" ({self.done / self.total:.0%})"
        parts.append(f"{rate:.1f} {self.unit}/s" if rate >= 1 else f"{rate * 60:.1f} {self.unit}/min")
        parts.append(f"{duration(spent)} spent")
        left = self.left(spent, rate)
        if left is not None:
            parts.append(f"~{duration(left)} left")
        text = ", ".join(parts)
        return f"{text}; {self.note}" if self.note else text

    def left(self, spent: float, rate: float) -> float | None:
        candidates = []
        if self.total and rate > 0:
            candidates.append(max(0, self.total - self.done) / rate)
        if self.budget_s is not None:
            candidates.append(max(0.0, self.budget_s - spent))
        return min(candidates) if candidates else None

    def _line(self, now: float) -> None:
        print(self.line(now), file=self.stream, flush=True)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
            return
        if self.enabled and self.every_s > 0:
            now = self.clock()
            spent = now - self.start
            rate = self.done / spent if spent > 0 else 0.0
            speed = f", {rate:.1f} {self.unit}/s" if rate >= 1 else ""
            note = f"; {self.note}" if self.note else ""
            print(
                f"{self.what}: done, {self.done} {self.unit} in {duration(spent)}{speed}{note}",
                file=self.stream,
                flush=True,
            )


def step(what: str, stream: TextIO | None = None) -> None:
    """One line saying what starts now (a stage's phases: features, tuning, ensemble...)."""
    if progress_every_s() > 0:
        print(what, file=stream if stream is not None else sys.stderr, flush=True)
