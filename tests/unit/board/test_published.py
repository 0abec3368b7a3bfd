"""What the board publishes: every score rounded (a scan of every published file), the
intervals in latest.md and latest.csv, the random-weights banner in every rendering, and a
terminal board that fits 80 columns without cutting a number or a name."""

from __future__ import annotations

import csv
import io
import json
import re

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from tasks.board.render import build_view, render_terminal
from tests.board_support import scored_board
from tests.unit.board.test_leaderboard import BASE_ROWS, TASKS, run_board, score_rows, write_results

DECIMALS = 2
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+\.(\d+)(?![\w.])")


@pytest.fixture(scope="module")
def closed_board(tmp_path_factory):
    root = tmp_path_factory.mktemp("board")
    return root, scored_board(root, closed=True, decimals=DECIMALS)


def is_rounded(value: float, decimals: int = DECIMALS) -> bool:
    return abs(value - round(value, decimals)) < 1e-9


def decimals_in(text: str) -> list[str]:
    return [m.group(0) for m in NUMBER.finditer(text) if len(m.group(1).rstrip("0")) > DECIMALS]


def test_every_published_file_carries_rounded_scores_only(closed_board):
    root, result = closed_board
    published = sorted((root / "leaderboard").rglob("*"))
    parquets = [p for p in published if p.suffix == ".parquet"]
    assert {p.name for p in parquets} >= {"latest.parquet", f"{result.snapshot.name}.parquet"}, "latest and snapshots"
    for path in parquets:
        table = pq.read_table(path)
        floats = [f.name for f in table.schema if f.type in ("double", "float")]
        assert {"public", "private", "gap", "public_lo", "private_hi", "gap_lo"} <= set(floats)
        for name in floats:
            values = [v for v in table.column(name).to_pylist() if v is not None]
            assert all(is_rounded(v) for v in values), (path.name, name, values[:5])
    with open(root / "leaderboard" / "latest.csv", newline="") as f:
        for row in csv.DictReader(f):
            for column, cell in row.items():
                assert not decimals_in(cell), (column, cell)
    md = (root / "leaderboard" / "latest.md").read_text()
    board_part = md.split("## Provenance")[0]  # the provenance JSON holds params and hashes, not scores
    assert not decimals_in(board_part), decimals_in(board_part)[:5]
    html = (root / "leaderboard" / "latest.html").read_text()
    page = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    page = re.sub(r'<section id="provenance">.*?</section>', "", page, flags=re.S)
    page = re.sub(r'data-sort="([-+\d.]+)"', lambda m: "" if is_rounded(float(m.group(1))) else m.group(0), page)
    assert not decimals_in(page), decimals_in(page)[:5]
    figures = re.findall(r"\[\"plot-[^\"]+\", (\{.*?\})\],\n", html)
    assert figures
    for text in figures:
        for trace in json.loads(text)["data"]:
            for axis in ("x", "y"):
                for v in trace.get(axis, []) or []:
                    if isinstance(v, float):
                        assert is_rounded(v), (trace.get("name"), axis, v)
    full = pq.read_table(root / "results" / "scores.parquet").column("value").to_pylist()
    assert any(not is_rounded(v) for v in full), "results/ keeps full precision"


def test_latest_md_and_csv_carry_the_intervals(closed_board):
    root, result = closed_board
    rows = {(r["track"], r["team"], r["task"]): r for r in result.board.to_pylist()}
    beta = rows[("classification", "beta", None)]
    with open(root / "leaderboard" / "latest.csv", newline="") as f:
        csv_rows = {(r["track"], r["team"], r["task"]): r for r in csv.DictReader(f)}
    got = csv_rows[("classification", "beta", "")]
    assert (got["private_lo"], got["private_hi"], got["rank_lo"], got["rank_hi"]) == (
        f"{beta['private_lo']:.2f}",
        f"{beta['private_hi']:.2f}",
        str(beta["rank_lo"]),
        str(beta["rank_hi"]),
    )
    md = (root / "leaderboard" / "latest.md").read_text()
    line = next(x for x in md.splitlines() if x.startswith("| 2 |") and "beta" in x)
    assert f"{beta['private_lo']:.2f}–{beta['private_hi']:.2f}" in line
    assert "adjacent pairs of ranked teams are separated" in md and "Kendall's tau" in md
    assert "Gap interval" in md and "Rank change" in md


def test_the_random_weights_banner_opens_every_rendering(closed_board, tmp_path):
    root, result = closed_board
    md = (root / "leaderboard" / "latest.md").read_text()
    assert md.splitlines()[2].startswith("> **Warning: random CLIP weights.**") and "embed.clip.pretrained" in md
    html = (root / "leaderboard" / "latest.html").read_text()
    assert html.index('id="weights-banner"') < html.index("<header>")
    out = io.StringIO()
    render_terminal(build_view(result), Console(file=out, width=80, color_system=None))
    assert out.getvalue().startswith("WARNING: random CLIP weights.")
    quiet = scored_board(tmp_path, random_weights=False)
    assert "random CLIP weights" not in (tmp_path / "leaderboard" / "latest.md").read_text()
    out = io.StringIO()
    render_terminal(build_view(quiet), Console(file=out, width=80, color_system=None))
    assert "random CLIP weights" not in out.getvalue()


@pytest.mark.parametrize("closed", [False, True])
def test_the_terminal_board_fits_80_columns_without_cutting(tmp_path, closed):
    long_name = "a-team-with-a-rather-long-name-x"
    rows = BASE_ROWS + score_rows(long_name, "s1", "2026-11-03T10:00:00Z", "c2", 0.123456, 0.5)
    write_results(tmp_path / "results", rows)
    view = build_view(run_board(tmp_path, "2026-11-10T00:00:00Z", closed=closed))
    out = io.StringIO()
    render_terminal(view, Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80, max(text.splitlines(), key=len)
    assert "…" not in text
    assert long_name in text and ("0.500" if closed else "0.123") in text
    for t in TASKS:
        assert f"= {t.task} ({t.metric})" in text, "task names in full"
    for track in view.tracks:
        for row in track["rows"]:
            assert (row["private"] if closed else row["public"]) in text


def test_a_scored_board_with_intervals_renders_to_the_same_bytes_twice(tmp_path):
    """Seeded plan, exact counts, DECIMAL sums: the intervals are byte-stable like the rest."""
    files = []
    for place in ("one", "two"):
        result = scored_board(tmp_path / place, closed=True)
        files.append({p.name: p.read_bytes() for p in result.files})
    assert files[0] == files[1]
