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

from tasks.board.aggregation import RULES, kendall_tau
from tasks.board.snapshots import LeaderboardResult
from tasks.core.files import atomic_write_bytes, write_parquet
from tasks.core.schema import LATEST

TEMPLATES = Path(__file__).with_name("templates")
DIGITS = 3  # scores as shown to people: leaderboard.public_decimals, its default here
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


def fmt_interval(lo: float | None, hi: float | None, digits: int = DIGITS, signed: bool = False) -> str:
    if lo is None or hi is None:
        return ""
    f = fmt_signed if signed else fmt
    return f"{f(lo, digits)}–{f(hi, digits)}"


def fmt_rank_range(lo: int | None, hi: int | None) -> str:
    if lo is None or hi is None:
        return ""
    return str(lo) if lo == hi else f"{lo}–{hi}"


RANDOM_INIT_FIX = (
    "To use real weights: set `embed.clip.pretrained` in params.yaml to an open_clip tag (e.g. laion2b_s34b_b79k) "
    "or a local checkpoint, make them reachable once (`HF_HUB_OFFLINE=0 .venv/bin/mmtc resolve-weights`, or "
    "`embed.clip.weights_dir`), then `dvc repro`; `embed.clip.if_unavailable: fail` refuses the fallback."
)


def weights_banner(provenance: dict) -> str | None:
    """A plain warning when the embeddings came from randomly initialised CLIP weights."""
    weights = provenance.get("weights", {}) or {}
    identity = weights.get("identity", {}) or {}
    if identity.get("kind") != "random-init":
        return None
    model = identity.get("model", "?")
    why = identity.get("reason", "")
    return (
        f"The embeddings behind this board come from RANDOMLY INITIALISED CLIP weights ({model}, seed "
        f"{identity.get('seed', '?')}{': ' + why if why else ''}): image and text features carry no pretrained "
        f"knowledge, so the baselines that use them understate what CLIP gives. " + RANDOM_INIT_FIX
    )


# Characters that can start markup inside a line or a table cell (GFM); `_` only counts at a
# word boundary, so task names like car_class stay readable.
MD_SPECIAL = re.compile(r"([\\`*\[\]|~])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def md(text: object) -> str:
    """Markdown-safe text for a table cell or a line: markup characters escaped, HTML as entities."""
    s = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = MD_SPECIAL.sub(lambda m: "\\" + m.group(0), s)
    return " ".join(s.split())


def csv_cell(value: object, digits: int = DIGITS) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return fmt(value, digits)
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
    decimals: int = DIGITS
    banner: str | None = None
    official: str = "mean"
    bootstrap: dict | None = None  # reps, level, parts: what the intervals rest on
    rules: tuple[str, ...] = RULES
    teams: list[dict] = field(default_factory=list)  # per team: what its selected submissions got wrong
    schedule: dict | None = None  # the phase as of the snapshot: {state, phase, ends, phases: [{name, start, end}]}
    unreleased: dict = field(default_factory=dict)  # task -> why it is not on the board (no release)


def build_view(result: LeaderboardResult) -> View:
    rows = result.board.to_pylist()
    p = result.snapshot.provenance
    board_params = p.get("params", {}).get("leaderboard", {}) or {}
    d_ = int(board_params.get("public_decimals", DIGITS))
    official = board_params.get("aggregation", "mean")
    closed = result.closed
    tracks: dict[str, dict] = {}
    for t in result.tasks:
        tracks.setdefault(t.track, {"name": t.track, "tasks": [], "rows": []})
        tracks[t.track]["tasks"].append({"task": t.task, "metric": t.metric, "title": t.title})
    by_team: dict[tuple[str, str], dict] = {}
    final = "private" if closed else "public"
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
                "public": fmt(r["public"], d_),
                "private": fmt(r["private"], d_),
                "gap": fmt_signed(r["gap"], d_),
                "interval": fmt_interval(r.get(f"{final}_lo"), r.get(f"{final}_hi"), d_),
                "public_interval": fmt_interval(r.get("public_lo"), r.get("public_hi"), d_),
                "gap_interval": fmt_interval(r.get("gap_lo"), r.get("gap_hi"), d_, signed=True),
                "rank_range": fmt_rank_range(r.get("rank_lo"), r.get("rank_hi")),
                "tie_group": r.get("tie_group"),
                "separated_below": r.get("separated_below"),
                "rule_ranks": {
                    rule: r.get(column)
                    for rule, column in (
                        ("mean", "rank_mean"),
                        ("mean-rank", "rank_mean_rank"),
                        ("borda", "rank_borda"),
                    )
                },
                "mean_rank": "" if r.get("mean_rank") is None else f"{r['mean_rank']:.2f}",
                "borda": "" if r.get("borda") is None else f"{r['borda']:g}",
                "differs": bool(r.get("rank_differs")),
                "rank_change": (
                    r["public_rank"] - r["rank"]
                    if closed and r["rank"] is not None and r["public_rank"] is not None
                    else None
                ),
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
                    "text": "missing" if r["missing"] else fmt(r[final], d_),
                    "interval": fmt_interval(r.get(f"{final}_lo"), r.get(f"{final}_hi"), d_),
                    "public": fmt(r["public"], d_),
                    "sort": "" if r["missing"] else fmt(r[final], 12),
                    "submission_id": r["submission_id"] or "",
                }
            )
    for track in tracks.values():
        _brackets(track["rows"])
        ranked = [r for r in track["rows"] if r["rank"]]
        pairs = [r for r in ranked if r["separated_below"] is not None]
        track["separated"] = (sum(bool(r["separated_below"]) for r in pairs), len(pairs)) if pairs else None
        track["tau"] = {rule: kendall_tau(rows, track["name"], official, rule) for rule in RULES if rule != official}
        track["differs"] = [r["team"] for r in ranked if r["differs"]]
    tasks = []
    for t in result.tasks:
        entries = [r for r in rows if r["level"] == "task" and r["task"] == t.task and not r["missing"]]
        entries.sort(key=lambda r: (-(r[final] if r[final] is not None else -1.0), r["submitted_at"] or "", r["team"]))
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
                        "public": fmt(r["public"], d_),
                        "public_interval": fmt_interval(r.get("public_lo"), r.get("public_hi"), d_),
                        "public_sort": fmt(r["public"], 12),
                        "private": fmt(r["private"], d_),
                        "private_interval": fmt_interval(r.get("private_lo"), r.get("private_hi"), d_),
                        "private_sort": fmt(r["private"], 12),
                        "gap": fmt_signed(r["gap"], d_),
                        "gap_interval": fmt_interval(r.get("gap_lo"), r.get("gap_hi"), d_, signed=True),
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
                "before_text": fmt(c["before"], d_) or "none",
                "after_text": fmt(c["after"], d_) or "none",
                "delta": fmt_signed(c["after"] - c["before"], d_)
                if c["after"] is not None and c["before"] is not None
                else "",
            }
            for c in d.score_changes
        ],
        "empty": d.empty,
    }
    boot = board_params.get("bootstrap") or {}
    has_intervals = any(r.get("public_lo") is not None for r in rows)
    return View(
        title=result.challenge,
        snapshot=result.snapshot.name,
        created_at=result.snapshot.created_at,
        policy=POLICY_TEXT.get(board_params.get("policy", ""), str(board_params.get("policy", ""))),
        closed=closed,
        tracks=list(tracks.values()),
        tasks=tasks,
        diff=diff,
        provenance=p,
        history=[s.name for s in result.history],
        decimals=d_,
        banner=weights_banner(p),
        official=official,
        bootstrap={
            "reps": boot.get("reps"),
            "level": f"{100 * float(boot.get('level', 0.95)):g}%",
            "parts": "the public and the private part" if closed else "the public part",
        }
        if has_intervals
        else None,
        teams=[{"team": team, "tasks": items} for team, items in sorted(result.diagnostics.items())],
        schedule=p.get("schedule"),
        unreleased=dict(sorted(p.get("data", {}).get("unreleased", {}).items())),
    )


def _brackets(rows: list[dict]) -> None:
    """Tie brackets: ranked teams of one tie group, drawn as a bracket when it has several."""
    ranked = [r for r in rows if r["rank"] and r["tie_group"] is not None]
    sizes: dict[int, int] = {}
    for r in ranked:
        sizes[r["tie_group"]] = sizes.get(r["tie_group"], 0) + 1
    seen: dict[int, int] = {}
    for r in rows:
        r["bracket"] = ""
        group = r["tie_group"] if r["rank"] else None
        if group is None or sizes.get(group, 0) < 2:
            continue
        seen[group] = seen.get(group, 0) + 1
        r["bracket"] = "┬" if seen[group] == 1 else ("┴" if seen[group] == sizes[group] else "│")


# --- plots ------------------------------------------------------------------------------------------


def plots(result: LeaderboardResult, view: View) -> list[dict]:
    """Per track: each team's score over the snapshots, and its per-task scores now.

    A team keeps one colour in every chart (colours follow the sorted team names)."""
    out = []
    final = "private" if result.closed else "public"
    # every team of the history: one withdrawn or disqualified since is in older snapshots only
    teams = sorted(
        {r["team"] for r in result.board.to_pylist()}
        | {t for s in result.history for t in s.board.column("team").to_pylist()}
    )
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
        out += _interval_plots(result, track, colour, layout)
    for section in view.teams:
        for item in section["tasks"]:
            if not item.get("curve"):
                continue
            fig = go.Figure()
            fig.add_trace(
                go.Scatter(
                    x=[p["recall"] for p in item["curve"]],
                    y=[p["precision"] for p in item["curve"]],
                    text=[f"threshold {p['threshold']}" for p in item["curve"]],
                    mode="lines+markers",
                    line={"shape": "hv", "color": colour.get(section["team"], PALETTE[0])},
                    name="score",
                )
            )
            at = item["at_threshold"]
            fig.add_trace(
                go.Scatter(
                    x=[at["recall"]],
                    y=[at["precision"]],
                    mode="markers",
                    marker={"size": 12, "symbol": "x"},
                    name="labels",
                )
            )
            fig.update_layout(
                title=f"{section['team']} · {item['task']}: precision-recall of the score ({item['parts']})",
                xaxis={"title": "recall", "range": [0, 1.02]},
                yaxis_title="precision",
                **layout,
            )
            out.append(
                {
                    "id": f"plot-pr-{section['team']}-{item['task']}",
                    "title": f"{section['team']} {item['task']}: PR curve",
                    "json": _figure_json(fig),
                    "team": section["team"],
                }
            )
    return out


def _interval_plots(result: LeaderboardResult, track: dict, colour: dict, layout: dict) -> list[dict]:
    """The track means with their bootstrap intervals (and, once closed, public against private)."""
    name = track["name"]
    rows = [r for r in result.board.to_pylist() if r["level"] == "track" and r["track"] == name]
    final = "private" if result.closed else "public"
    if not any(r[f"{final}_lo"] is not None for r in rows):
        return []
    out = []
    fig = go.Figure()
    for r in sorted(rows, key=lambda r: r["position"], reverse=True):
        label = r["team"] + (" (baseline)" if r["baseline"] else f" (rank {r['rank']})")
        fig.add_trace(
            go.Scatter(
                x=[r[final]],
                y=[label],
                mode="markers",
                name=label,
                marker={"color": colour[r["team"]], "size": 10, "symbol": "diamond" if r["baseline"] else "circle"},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": [max(0.0, (r[f"{final}_hi"] or r[final]) - r[final])],
                    "arrayminus": [max(0.0, r[final] - (r[f"{final}_lo"] or r[final]))],
                },
                showlegend=False,
            )
        )
    forest = dict(layout) | {"height": 120 + 32 * len(rows), "margin": {"l": 260, "r": 20, "t": 60, "b": 50}}
    forest.pop("yaxis_range", None)
    fig.update_layout(
        title=f"{name}: track mean ({final}) with its bootstrap interval",
        xaxis={"title": "mean primary metric", "range": [0, 1.02]},
        **forest,
    )
    out.append({"id": f"plot-intervals-{name}", "title": f"{name}: intervals", "json": _figure_json(fig)})
    if result.closed:
        fig = go.Figure()
        fig.add_trace(
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "#999"}, name="public = private")
        )
        for r in rows:
            fig.add_trace(
                go.Scatter(
                    x=[r["public"]],
                    y=[r["private"]],
                    mode="markers+text",
                    text=[r["team"]],
                    textposition="top center",
                    name=r["team"] + (" (baseline)" if r["baseline"] else ""),
                    marker={"color": colour[r["team"]], "size": 10},
                    error_x={
                        "type": "data",
                        "symmetric": False,
                        "array": [max(0.0, (r["public_hi"] or r["public"]) - r["public"])],
                        "arrayminus": [max(0.0, r["public"] - (r["public_lo"] or r["public"]))],
                    },
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": [max(0.0, (r["private_hi"] or r["private"]) - r["private"])],
                        "arrayminus": [max(0.0, r["private"] - (r["private_lo"] or r["private"]))],
                    },
                )
            )
        fig.update_layout(
            title=f"{name}: public against private track mean (below the line: worse on the hidden part)",
            xaxis={"title": "public", "range": [0, 1.02]},
            yaxis_title="private",
            **layout,
        )
        out.append(
            {"id": f"plot-public-private-{name}", "title": f"{name}: public vs private", "json": _figure_json(fig)}
        )
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
    env.globals["tie_letter"] = tie_letter
    env.filters["short"] = lambda s: str(s)[:12]
    return env


def tie_letter(row: dict) -> str:
    """A tie group as a letter (A, B, ...; past Z, a number) for text renderings."""
    group = row.get("tie_group") if row.get("rank") else None
    if group is None:
        return ""
    return chr(ord("A") + group - 1) if group <= 26 else str(group)


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


def render_csv(board: pa.Table, decimals: int = DIGITS) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(board.column_names)
    for row in board.to_pylist():
        writer.writerow([csv_cell(row[c], decimals) for c in board.column_names])
    return out.getvalue()


TERMINAL_WIDTH = 80


def render_terminal(view: View, console=None) -> None:
    """The board per track as rich tables that fit 80 columns without cutting a number or a name:
    the standings (rank, tie group, team, mean, interval, rank range), then the per-task scores
    under short headers (T1, T2, ...) with the task names in full below them, in as many tables
    as the width needs. Text objects throughout: names are never read as markup."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    width = min(console.width, TERMINAL_WIDTH)
    if view.banner:
        console.print(Text("WARNING: random CLIP weights. " + view.banner, style="bold yellow"), width=width)
    state = "closed: final ranks follow the private scores" if view.closed else "open: public scores only"
    console.print(Text(f"{view.title} · snapshot {view.snapshot} · {state}", style="bold"), width=width)
    if view.bootstrap:
        console.print(
            Text(
                f"intervals: {view.bootstrap['level']} paired bootstrap ({view.bootstrap['reps']} resamples); "
                f"tie: teams with one letter are not separated; official rule: {view.official}",
                style="dim",
            ),
            width=width,
        )

    if view.schedule:
        console.print(Text(f"schedule: {view.schedule['state']}"), width=width)
    for task, why in view.unreleased.items():
        console.print(Text(f"not on the board: {task}: {why}", style="bold red"), width=width)

    def table(title: str | None = None) -> Table:
        return Table(
            title=Text(title) if title else None,
            title_justify="left",
            box=box.SIMPLE_HEAD,
            padding=(0, 1),
            show_edge=False,
            pad_edge=False,
        )

    for track in view.tracks:
        rows = track["rows"]
        standings = table(f"track {track['name']}")
        standings.add_column("rank", justify="right", no_wrap=True)
        standings.add_column("tie", no_wrap=True)
        standings.add_column("team", overflow="fold")  # long names wrap, never cut
        standings.add_column("private" if view.closed else "mean", justify="right", no_wrap=True)
        standings.add_column("interval", justify="right", no_wrap=True)
        standings.add_column("rank range", justify="right", no_wrap=True)
        for row in rows:
            standings.add_row(
                Text("base", style="italic cyan") if row["baseline"] else Text(row["rank"] or "–"),
                Text(tie_letter(row)),
                Text(row["team"], style="italic cyan" if row["baseline"] else ""),
                Text(row["private"] if view.closed else row["public"]),
                Text(row["interval"]),
                Text(row["rank_range"]),
            )
        console.print(standings, width=width)
        if track.get("separated"):
            sep, pairs = track["separated"]
            console.print(Text(f"{sep} of {pairs} adjacent pairs separated", style="dim"), width=width)
        if track["differs"]:
            console.print(Text("rank differs between rules: " + ", ".join(track["differs"]), style="dim"), width=width)

        tasks = track["tasks"]
        team_width = max([len(r["team"]) for r in rows] + [4])
        extra = [("public", 7), ("gap", 8)] if view.closed else []
        cell = max([len(c["text"]) for r in rows for c in r["cells"]] + [3]) + 3
        room = width - min(team_width, 36) - 3 - sum(w for _, w in extra)
        per_table = max(1, room // cell)
        for start in range(0, len(tasks), per_table):
            chunk = tasks[start : start + per_table]
            scores = table()
            scores.add_column("team", overflow="fold")
            for name, _ in extra:
                scores.add_column(name, justify="right", no_wrap=True)
            for i, _ in enumerate(chunk):
                scores.add_column(f"T{start + i + 1}", justify="right", no_wrap=True)
            for row in rows:
                cells = row["cells"][start : start + per_table]
                values = [Text(row["public"]), Text(row["gap"])] if view.closed else []
                scores.add_row(
                    Text(row["team"], style="italic cyan" if row["baseline"] else ""),
                    *values,
                    *[Text("–", style="dim") if c["missing"] else Text(c["text"]) for c in cells],
                )
            console.print(scores, width=width)
            for i, t in enumerate(chunk):
                console.print(Text(f"  T{start + i + 1} = {t['task']} ({t['metric']})", style="dim"), width=width)
        if any(c["missing"] for r in rows for c in r["cells"]):
            console.print(Text("  – no submission for the task (counts 0)", style="dim"), width=width)


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
        ("csv", render_csv(result.board, view.decimals)),
        ("md", render_markdown(view)),
        ("html", render_html(view, plots(result, view))),
    ):
        path = root / f"{LATEST}.{ext}"
        atomic_write_bytes(path, text.encode("utf-8"))
        paths.append(path)
    return paths
