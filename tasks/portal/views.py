"""What the pages and the API show, read from the stages' files and filtered for who asks.

A team sees its own submissions (accepted, rejected with every reason of rejection.json, the
organisers' decisions) and their public scores; private scores appear only once the challenge
is closed. Nothing here opens data/private: scores come from results/scores.parquet, the board
from the leaderboard's snapshots.
"""

from __future__ import annotations

import json
import os
import uuid
import zipfile
from pathlib import Path

import pyarrow.parquet as pq

from tasks.board.render import build_view, fmt
from tasks.board.snapshots import current_result
from tasks.core.files import sha256_file
from tasks.core.moderation import read_decisions, states
from tasks.core.schema import (
    CARD,
    PRIVATE,
    PUBLIC,
    REJECTED_DIR,
    REJECTION_META,
    SAMPLE_SUBMISSION,
    SCORES,
    SUBMISSION_META,
)
from tasks.submissions.submit import SUBMISSION_ID


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def scores_by_submission(results_root: Path, team: str | None, closed: bool) -> dict[str, dict[str, dict]]:
    """submission key -> task -> {public, private?, metric}: primary metric only; private only when closed."""
    path = Path(results_root) / SCORES
    if not path.is_file():
        return {}
    filters = [("primary", "=", True)] + ([("team", "=", team)] if team else [])
    if not closed:
        filters.append(("split", "=", PUBLIC))
    table = pq.read_table(path, columns=["submission", "task", "split", "metric", "value"], filters=filters)
    out: dict[str, dict[str, dict]] = {}
    for r in table.to_pylist():
        if r["split"] not in (PUBLIC, PRIVATE):
            continue
        cell = out.setdefault(r["submission"], {}).setdefault(r["task"], {"metric": r["metric"]})
        cell[r["split"]] = fmt(r["value"])
    return out


def team_submissions(
    submissions_root: Path, results_root: Path, team: str, closed: bool, with_reasons: bool = True
) -> list[dict]:
    """A team's submissions, newest first: accepted (scored or waiting) and rejected with their reasons."""
    root = Path(submissions_root)
    scores = scores_by_submission(results_root, team, closed)
    moderation = states(root)
    out = []
    for folder, meta_name, accepted in (
        (root / team, SUBMISSION_META, True),
        (root / REJECTED_DIR / team, REJECTION_META, False),
    ):
        if not folder.is_dir():
            continue
        for sub in folder.iterdir():
            if not SUBMISSION_ID.match(sub.name):
                continue
            meta = _json(sub / meta_name)
            if meta is None:
                continue
            key = f"{team}/{sub.name}"
            entry = {
                "team": team,
                "submission_id": sub.name,
                "name": meta.get("name", ""),
                "description": meta.get("description", ""),
                "submitted_at": meta.get("submitted_at", ""),
                "files": sorted(meta.get("files", {})),
                "tasks": meta.get("tasks", []),
                "scores": scores.get(key, {}) if accepted else {},
            }
            if accepted:
                state = moderation.get(key, "active")
                entry["moderation"] = state
                if state != "active":
                    entry["status"] = state
                elif entry["scores"]:
                    entry["status"] = "scored"
                else:
                    entry["status"] = "accepted"  # waits for the next evaluation
                entry["reasons"] = []
            else:
                entry["status"] = "rejected"
                entry["reasons"] = (
                    [
                        {k: r.get(k) for k in ("message", "problem", "fix", "task", "file", "column")}
                        for r in meta.get("reasons", [])
                    ]
                    if with_reasons
                    else []
                )
            out.append(entry)
    out.sort(key=lambda e: (e["submitted_at"], e["submission_id"]), reverse=True)
    return out


def all_teams_with_submissions(submissions_root: Path) -> list[str]:
    root = Path(submissions_root)
    names = set()
    for base in (root, root / REJECTED_DIR):
        if base.is_dir():
            names |= {p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    return sorted(names)


def decisions(submissions_root: Path) -> list[dict]:
    return [d.model_dump() for d in read_decisions(submissions_root)]


def board(results_root: Path, leaderboard_root: Path, closed: bool, challenge_name: str) -> dict | None:
    """The current board per track, as participants may see it (public means until the close)."""
    result = current_result(Path(results_root), Path(leaderboard_root), closed, challenge_name)
    if result is None:
        return None
    view = build_view(result)
    tracks = []
    for t in view.tracks:
        tracks.append(
            {
                "name": t["name"],
                "tasks": [{"task": x["task"], "title": x["title"], "metric": x["metric"]} for x in t["tasks"]],
                "rows": [
                    {
                        "rank": r["rank"],
                        "team": r["team"],
                        "baseline": r["baseline"],
                        "mean": r["private"] if closed else r["public"],
                        "public_mean": r["public"],
                        "missing": r["missing"],
                        "entries": r["entries"],
                        "cells": [{"task": c["task"], "text": c["text"], "missing": c["missing"]} for c in r["cells"]],
                    }
                    for r in t["rows"]
                ],
            }
        )
    return {
        "challenge": view.title,
        "snapshot": view.snapshot,
        "created_at": view.created_at,
        "closed": closed,
        "ranked_by": "private scores" if closed else "public scores (private scores are hidden until the close)",
        "tracks": tracks,
    }


def release_cards(public_root: Path, tasks: list[str]) -> list[dict]:
    """What the overview shows of each task: from its public card only."""
    out = []
    for task in tasks:
        card = _json(Path(public_root) / task / CARD)
        if card is None:
            out.append({"task": task, "available": False})
            continue
        out.append(
            {
                "task": task,
                "available": True,
                "title": card.get("title") or task,
                "description": card.get("description") or "",
                "type": card.get("type"),
                "track": card.get("track"),
                "metric": card.get("primary_metric"),
                "rows": {k: v.get("rows") for k, v in (card.get("tables") or {}).items()},
                "sample": (Path(public_root) / task / SAMPLE_SUBMISSION).is_file(),
            }
        )
    return out


def release_zip(public_root: Path, task: str, cache_dir: Path) -> Path:
    """A zip of data/public/<task>/ (the release as published), built once per card checksum."""
    folder = Path(public_root) / task
    card = folder / CARD
    key = sha256_file(card)[:16]
    cache_dir = Path(cache_dir)
    path = cache_dir / f"{task}-{key}.zip"
    if path.is_file():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(folder.rglob("*")):
                if f.is_file() and not f.is_symlink():
                    zf.write(f, f"{task}/{f.relative_to(folder).as_posix()}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
