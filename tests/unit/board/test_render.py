"""The rendered leaderboard: escaping wherever names are shown, a self-contained HTML page,
fixed number formats, and the terminal table."""

from __future__ import annotations

import io
import re

from rich.console import Console

from tasks.board.render import build_view, csv_cell, fmt, json_for_script, md, render_terminal
from tests.unit.board.test_leaderboard import BASE_ROWS, run_board, score_rows, write_results

HOSTILE = "<img src=x onerror=alert(1)>|*b*[x](y)"


def hostile_board(tmp_path):
    rows = (
        BASE_ROWS
        + score_rows(HOSTILE, "s1", "2026-11-03T10:00:00Z", "m1", 0.5, 0.5)
        + score_rows("=cmd()", "s1", "2026-11-03T10:00:00Z", "c1", 0.5, 0.5)
        + score_rows("[bold]rich[/bold]", "s1", "2026-11-03T10:00:00Z", "c2", 0.5, 0.5)
    )
    write_results(tmp_path / "results", rows)
    return run_board(tmp_path, "2026-11-10T00:00:00Z")


def test_names_are_escaped_in_html_markdown_csv_and_the_terminal(tmp_path):
    """Names are slugs when they come through `mmtc submit`; the renderers do not rely on it."""
    result = hostile_board(tmp_path)
    html = (tmp_path / "leaderboard" / "latest.html").read_text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "\\u003cimg src=x" in html, "names inside the plots' JSON cannot close the script"
    text = (tmp_path / "leaderboard" / "latest.md").read_text()
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;\\|\\*b\\*\\[x\\](y)" in text
    csv_text = (tmp_path / "leaderboard" / "latest.csv").read_text()
    assert ",'=cmd()," in csv_text and ",=cmd()," not in csv_text
    out = io.StringIO()
    render_terminal(build_view(result), Console(file=out, width=200, color_system=None))
    assert "[bold]rich[/bold]" in out.getvalue()


def test_the_html_page_is_self_contained(tmp_path):
    hostile_board(tmp_path)
    html = (tmp_path / "leaderboard" / "latest.html").read_text()
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html), "no external resource"
    assert "Plotly.newPlot" in html and len(html) > 1_000_000, "plotly.js is inlined"
    assert html.count('class="sortable board"') == 2 and html.count('class="sortable task-table"') == 3
    assert 'class="badge badge-baseline"' in html and 'class="missing"' in html


def test_fixed_formats_and_helpers():
    assert fmt(0.5) == "0.500" and fmt(None) == "" and fmt(1 / 3, 6) == "0.333333"
    assert (
        csv_cell(True) == "true"
        and csv_cell(None) == ""
        and csv_cell("+1") == "'+1"
        and csv_cell("@x") == "'@x"
        and csv_cell("a-b") == "a-b"
    )
    assert md("car_class") == "car_class" and md("_x_") == "\\_x\\_" and md("a\nb") == "a b"
    assert json_for_script({"k": "</script><!--"}) == '{"k": "\\u003c/script\\u003e\\u003c!--"}'
