"""How the leaderboard is shown: Parquet and CSV for machines, Markdown for the repository,
a self-contained HTML page (sortable tables, plotly charts inlined, works offline) and a rich
table for the terminal.

Everything shown is escaped for where it goes (HTML, Markdown, CSV cells, terminal markup),
numbers have a fixed format, and rows a total order, so the same snapshot renders to the
same bytes.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jinja2
import plotly.graph_objects as go
import plotly.io as pio
import pyarrow as pa

from tasks.board.snapshots import LeaderboardResult
from tasks.core.files import atomic_write_bytes, write_parquet
from tasks.core.schema import LATEST

TEMPLATES = Path(__file__).with_name("templates")
DIGITS = 4  # scores as shown to people
CSV_DIGITS = 6
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
POLICY_TEXT = {
    "best-public": "each team's best public submission per task (ties: the earlier one)",
    "last": "each team's last submission per task",
}


# --- formatting and escaping ------------------------------------------------------------------------


def fmt(value: float | None, digits: int = DIGITS) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}"


def fmt_signed(value: float | None, digits: int = DIGITS) -> str:
    if value is None:
        return ""
    return f"{value:+.{digits}f}"


# Characters that can start markup inside a line or a table cell (GFM); `_` only counts at a
# word boundary, so task names like car_class stay readable.
MD_SPECIAL = re.compile(r"([\\`*\[\]|~])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def md(text: object) -> str:
    """Markdown-safe text for a table cell or a line: markup characters escaped, HTML as entities."""
    s = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = MD_SPECIAL.sub(lambda m: "\\" + m.group(0), s)
    return " ".join(s.split())


def csv_cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return fmt(value, CSV_DIGITS)
    s = str(value)
    if s[:1] in ("=", "+", "-", "@", "\t", "\r"):
        s = "'" + s
    return s


def json_for_script(data: object) -> str:
    """JSON that cannot close its <script> element or open a comment."""
    text = data if isinstance(data, str) else json.dumps(data, sort_keys=True, ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


# --- the view: what every format shows ----------------------------------------------------------------


@dataclass
class View:
    title: str
    snapshot: str
    created_at: str
    policy: str
    closed: bool
    tracks: list[dict]
    tasks: list[dict]
    diff: dict
    provenance: dict
    history: list[str]
    schedule: dict | None = None  # the phase as of the snapshot: {state, phase, ends, phases: [{name, start, end}]}
    unreleased: dict = field(default_factory=dict)  # task -> why it is not on the board (no release)


def build_view(result: LeaderboardResult) -> View:
    rows = result.board.to_pylist()
    tracks: dict[str, dict] = {}
    for t in result.tasks:
        tracks.setdefault(t.track, {"name": t.track, "tasks": [], "rows": []})
        tracks[t.track]["tasks"].append({"task": t.task, "metric": t.metric, "title": t.title})
    by_team: dict[tuple[str, str], dict] = {}
    for r in rows:
        track = tracks[r["track"]]
        if r["level"] == "track":
            team_row = {
                "position": r["position"],
                "rank": "" if r["rank"] is None else str(r["rank"]),
                "rank_sort": "Infinity" if r["rank"] is None else str(r["rank"]),
                "public_rank": "" if r["public_rank"] is None else str(r["public_rank"]),
                "team": r["team"],
                "baseline": r["baseline"],
                "public": fmt(r["public"]),
                "private": fmt(r["private"]),
                "gap": fmt_signed(r["gap"]),
                "missing": r["missing"],
                "entries": r["entries"],
                "rejected": r["rejected"],
                "reached_at": r["submitted_at"] or "",
                "cells": [],
            }
            track["rows"].append(team_row)
            by_team[(r["track"], r["team"])] = team_row
        else:
            by_team[(r["track"], r["team"])]["cells"].append(
                {
                    "task": r["task"],
                    "missing": bool(r["missing"]),
                    "text": "missing" if r["missing"] else fmt(r["private"] if result.closed else r["public"]),
                    "public": fmt(r["public"]),
                    "sort": "" if r["missing"] else fmt(r["private"] if result.closed else r["public"], 12),
                    "submission_id": r["submission_id"] or "",
                }
            )
    tasks = []
    for t in result.tasks:
        entries = [r for r in rows if r["level"] == "task" and r["task"] == t.task and not r["missing"]]
        key = "private" if result.closed else "public"
        entries.sort(key=lambda r: (-(r[key] if r[key] is not None else -1.0), r["submitted_at"] or "", r["team"]))
        tasks.append(
            {
                "task": t.task,
                "title": t.title,
                "metric": t.metric,
                "track": t.track,
                "type": t.task_type,
                "rows": [
                    {
                        "place": i + 1,
                        "team": r["team"],
                        "baseline": r["baseline"],
                        "public": fmt(r["public"]),
                        "public_sort": fmt(r["public"], 12),
                        "private": fmt(r["private"]),
                        "private_sort": fmt(r["private"], 12),
                        "gap": fmt_signed(r["gap"]),
                        "gap_sort": fmt(r["gap"], 12),
                        "submission_id": r["submission_id"] or "",
                        "submitted_at": r["submitted_at"] or "",
                    }
                    for i, r in enumerate(entries)
                ],
            }
        )
    d = result.diff
    diff = {
        "previous": d.previous,
        "new_entries": d.new_entries,
        "dropped": d.dropped,
        "rank_changes": d.rank_changes,
        "score_changes": [
            c
            | {
                "before_text": fmt(c["before"]) or "none",
                "after_text": fmt(c["after"]) or "none",
                "delta": fmt_signed(c["after"] - c["before"])
                if c["after"] is not None and c["before"] is not None
                else "",
            }
            for c in d.score_changes
        ],
        "empty": d.empty,
    }
    p = result.snapshot.provenance
    return View(
        title=result.challenge,
        snapshot=result.snapshot.name,
        created_at=result.snapshot.created_at,
        policy=POLICY_TEXT.get(
            p.get("params", {}).get("leaderboard", {}).get("policy", ""),
            str(p.get("params", {}).get("leaderboard", {}).get("policy", "")),
        ),
        closed=result.closed,
        tracks=list(tracks.values()),
        tasks=tasks,
        diff=diff,
        provenance=p,
        history=[s.name for s in result.history],
        schedule=p.get("schedule"),
        unreleased=dict(sorted(p.get("data", {}).get("unreleased", {}).items())),
    )


# --- plots ------------------------------------------------------------------------------------------


def plots(result: LeaderboardResult, view: View) -> list[dict]:
    """Per track: each team's score over the snapshots, and its per-task scores now.

    A team keeps one colour in every chart (colours follow the sorted team names)."""
    out = []
    final = "private" if result.closed else "public"
    teams = sorted({r["team"] for r in result.board.to_pylist()})
    colour = {team: PALETTE[i % len(PALETTE)] for i, team in enumerate(teams)}
    snapshots = [s.created_at for s in result.history]
    layout = dict(
        yaxis_range=[0, 1.02],
        template="plotly_white",
        height=380,
        margin={"l": 60, "r": 20, "t": 60, "b": 60},
        legend={"traceorder": "normal"},
    )
    for track in view.tracks:
        name = track["name"]
        series: dict[str, tuple[bool, list, list]] = {}
        for snap in result.history:
            for r in snap.board.to_pylist():
                if r["level"] == "track" and r["track"] == name:
                    base, xs, ys = series.setdefault(r["team"], (r["baseline"], [], []))
                    xs.append(snap.created_at)
                    ys.append(r["public"])
        fig = go.Figure()
        for team in sorted(series):
            base, xs, ys = series[team]
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    name=team + (" (baseline)" if base else ""),
                    mode="lines+markers",
                    line={"dash": "dash" if base else "solid", "color": colour[team]},
                )
            )
        fig.update_layout(
            title=f"{name}: each team's track score (public) over snapshots",
            xaxis={"title": "snapshot (UTC)", "type": "category", "categoryorder": "array", "categoryarray": snapshots},
            yaxis_title="mean primary metric",
            **layout,
        )
        out.append({"id": f"plot-history-{name}", "title": f"{name}: score over snapshots", "json": _figure_json(fig)})

        fig = go.Figure()
        tasks = [t["task"] for t in track["tasks"]]
        for row in track["rows"]:
            cells = {c["task"]: c for c in row["cells"]}
            ys = [None if cells[t]["missing"] else float(cells[t]["sort"]) for t in tasks]
            fig.add_trace(
                go.Bar(
                    x=tasks,
                    y=ys,
                    name=row["team"] + (" (baseline)" if row["baseline"] else ""),
                    marker={"color": colour[row["team"]], "pattern": {"shape": "/" if row["baseline"] else ""}},
                )
            )
        fig.update_layout(
            title=f"{name}: per-task {final} scores of the selected submissions (gaps: missing)",
            barmode="group",
            yaxis_title="primary metric",
            **layout,
        )
        out.append({"id": f"plot-tasks-{name}", "title": f"{name}: per-task scores", "json": _figure_json(fig)})
    return out


def _figure_json(fig: go.Figure) -> str:
    data = json.loads(pio.to_json(fig, validate=True, engine="json"))
    return json_for_script({"data": data.get("data", []), "layout": data.get("layout", {})})


@lru_cache(maxsize=1)
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


# --- renderers ------------------------------------------------------------------------------------------


def _env(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["md"] = md
    env.filters["short"] = lambda s: str(s)[:12]
    return env


def render_markdown(view: View) -> str:
    text = (
        _env(False)
        .get_template("leaderboard.md.j2")
        .render(v=view, provenance_json=json.dumps(view.provenance, indent=2, sort_keys=True, ensure_ascii=False))
    )
    return re.sub(r"\n{3,}", "\n\n", text).rstrip("\n") + "\n"


def render_html(view: View, figures: list[dict]) -> str:
    env = _env(True)
    return env.get_template("leaderboard.html.j2").render(
        v=view,
        figures=figures,
        provenance_json=json.dumps(view.provenance, indent=2, sort_keys=True, ensure_ascii=False),
        css=(TEMPLATES / "leaderboard.css").read_text(encoding="utf-8"),
        sortable_js=(TEMPLATES / "sortable.js").read_text(encoding="utf-8"),
        plotly_js=plotly_js(),
    )


def render_csv(board: pa.Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(board.column_names)
    for row in board.to_pylist():
        writer.writerow([csv_cell(row[c]) for c in board.column_names])
    return out.getvalue()


def render_terminal(view: View, console=None) -> None:
    """The board per track as rich tables (text objects: names are never read as markup)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    state = "closed: final ranks follow the private scores" if view.closed else "open: public scores only"
    console.print(Text(f"{view.title} · snapshot {view.snapshot} · {state}", style="bold"))
    if view.schedule:
        console.print(Text(f"schedule: {view.schedule['state']}"))
    for task, why in view.unreleased.items():
        console.print(Text(f"not on the board: {task}: {why}", style="bold red"))
    for track in view.tracks:
        table = Table(title=Text(f"track {track['name']}"), title_justify="left")
        table.add_column("rank", justify="right")
        table.add_column("team", no_wrap=True)  # names stay whole; task headers shrink instead
        table.add_column("mean" + (" (private)" if view.closed else ""), justify="right")
        if view.closed:
            table.add_column("public", justify="right")
            table.add_column("gap", justify="right")
        for t in track["tasks"]:
            table.add_column(Text(t["task"]), justify="right")
        table.add_column("entries", justify="right")
        for row in track["rows"]:
            team = Text(row["team"], style="italic cyan" if row["baseline"] else "")
            mean = row["private"] if view.closed else row["public"]
            cells = [Text(c["text"], style="dim" if c["missing"] else "") for c in row["cells"]]
            extra = [Text(row["public"]), Text(row["gap"])] if view.closed else []
            rank = Text("baseline", style="italic cyan") if row["baseline"] else Text(row["rank"] or "–")
            table.add_row(rank, team, Text(mean), *extra, *cells, Text(str(row["entries"])))
        console.print(table)


def write_latest(result: LeaderboardResult, leaderboard_root: Path) -> list[Path]:
    """leaderboard/latest.{parquet,csv,md,html}, each written atomically."""
    root = Path(leaderboard_root)
    root.mkdir(parents=True, exist_ok=True)
    view = build_view(result)
    paths = []
    parquet = root / f"{LATEST}.parquet"
    tmp = root / f".{LATEST}.parquet.tmp"
    write_parquet(result.board, tmp)
    tmp.replace(parquet)
    paths.append(parquet)
    for ext, text in (
        ("csv", render_csv(result.board)),
        ("md", render_markdown(view)),
        ("html", render_html(view, plots(result, view))),
    ):
        path = root / f"{LATEST}.{ext}"
        atomic_write_bytes(path, text.encode("utf-8"))
        paths.append(path)
    return paths
