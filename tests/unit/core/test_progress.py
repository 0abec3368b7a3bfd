"""Progress lines: throttled, with rate and time left, when there is no terminal; a bar when there is."""

from __future__ import annotations

import io

from tasks.core.progress import PROGRESS_EVERY_ENV, Progress, duration, progress_every_s


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_given_no_terminal_when_items_are_done_then_a_line_every_few_seconds_says_rate_and_time_left():
    clock, out = Clock(), io.StringIO()
    with Progress("embed toy image photo", 100, "img", every_s=5, stream=out, clock=clock) as bar:
        for _ in range(10):  # 10 items in 2 s: no line yet
            clock.now += 0.2
            bar.update()
        assert out.getvalue() == ""
        for _ in range(40):  # 40 more in 8 s: a line at the 5 s and at the 10 s mark
            clock.now += 0.2
            bar.update()
    lines = out.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert lines[0] == "embed toy image photo: 25/100 img (25%), 5.0 img/s, 5.0s spent, ~15s left"
    assert lines[1] == "embed toy image photo: 50/100 img (50%), 5.0 img/s, 10s spent, ~10s left"
    assert lines[2] == "embed toy image photo: done, 50 img in 10s, 5.0 img/s"


def test_given_a_budget_the_time_left_is_capped_by_it_and_notes_are_shown():
    clock, out = Clock(), io.StringIO()
    bar = Progress("tune toy", 40, "trials", every_s=1, budget_s=30, stream=out, clock=clock)
    clock.now += 10
    bar.update(1, note="trial 0 (catboost defaults) macro_f1 0.7000")
    line = out.getvalue().strip()
    assert "1/40 trials" in line and "6.0 trials/min" in line and "~20s left" in line
    assert line.endswith("; trial 0 (catboost defaults) macro_f1 0.7000")
    clock.now += 2
    bar.tick("trial 1, fold 2/3, iteration 120")  # nothing new done, but where the work is
    assert out.getvalue().strip().splitlines()[-1].endswith("; trial 1, fold 2/3, iteration 120")


def test_given_a_terminal_a_tqdm_bar_is_drawn_instead_of_lines():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    with Progress("embed toy text", 3, "text", every_s=5, stream=out) as bar:
        bar.update(3)
    assert "3/3" in out.getvalue() and "\r" in out.getvalue()


def test_interval_from_the_environment_and_zero_silences(monkeypatch):
    monkeypatch.setenv(PROGRESS_EVERY_ENV, "0")
    assert progress_every_s() == 0
    out = io.StringIO()
    with Progress("quiet", 2, stream=out) as bar:
        bar.update(2)
    assert out.getvalue() == ""
    monkeypatch.setenv(PROGRESS_EVERY_ENV, "not a number")
    assert progress_every_s() == 5.0
    assert duration(3.25) == "3.2s" and duration(42) == "42s" and duration(185) == "3m05s" and duration(3720) == "1h02m"
