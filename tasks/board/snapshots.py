"""Immutable snapshots of the board, with their provenance, and the diff between two of them.

`update_leaderboard` ranks (tasks/board/ranking.py) and compares the board with the newest
snapshot in `leaderboard/snapshots/`: when anything that matters changed (the board, the data
hashes, the params it used) it adds a new snapshot `<UTC time>.parquet`, never touching the
old ones; when nothing changed it adds nothing. The `latest.*` files are then rendered
(tasks/board/render.py) from the newest snapshot, its predecessor (the diff) and the whole
history (the plots), so the same inputs give the same bytes.

DVC deletes a stage's outputs before it reruns it; the snapshots folder is declared with
`persist: true` so that the history survives (and it is still cached and pushed by DVC).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.board import aggregation, diagnostics, probing
from tasks.board import bootstrap as uncertainty
from tasks.board.ranking import BOARD_SCHEMA, TaskMeta, build_board, read_evaluation, tasks_of
from tasks.core import __version__
from tasks.core.clock import ChallengeState
from tasks.core.files import sha256_file
from tasks.core.params import LeaderboardParams, Phase
from tasks.core.schema import (
    BOOTSTRAP_COUNTS,
    BOOTSTRAP_GROUPS,
    PRIVATE,
    PUBLIC,
    SCORES,
    SNAPSHOTS_DIR,
    WEIGHTS_IDENTITY,
)

SNAPSHOT_TIME = "%Y%m%dT%H%M%SZ"
SNAPSHOT_NAME = re.compile(r"^\d{8}T\d{6}Z\.parquet$")
PROVENANCE_KEY = b"mmtc.provenance"
# What a snapshot holds: the ranking's board, the ranks under each aggregation rule, the bootstrap's intervals.
SNAPSHOT_SCHEMA = pa.schema(
    list(BOARD_SCHEMA) + [pa.field(n, t) for n, t in aggregation.AGGREGATION_FIELDS + uncertainty.UNCERTAINTY_FIELDS]
)

# --- snapshots ------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    name: str  # <UTC time>, the file stem
    board: pa.Table
    provenance: dict

    @property
    def created_at(self) -> str:
        return self.provenance.get("created_at", "")


def list_snapshots(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if SNAPSHOT_NAME.match(p.name))


def read_snapshot(path: Path) -> Snapshot:
    table = pq.read_table(path)
    meta = (table.schema.metadata or {}).get(PROVENANCE_KEY, b"{}")
    return Snapshot(Path(path).stem, conform(table.replace_schema_metadata(None)), json.loads(meta))


def conform(table: pa.Table) -> pa.Table:
    """A board in SNAPSHOT_SCHEMA: columns an older snapshot lacks are added, empty."""
    for f in SNAPSHOT_SCHEMA:
        if f.name not in table.column_names:
            table = table.append_column(f, pa.nulls(table.num_rows, f.type))
    return table.select(SNAPSHOT_SCHEMA.names).cast(SNAPSHOT_SCHEMA)


def board_digest(board: pa.Table, provenance: dict) -> str:
    """What decides whether a new snapshot is due: the board, the data it came from, the params
    and weights in use. Not the code version or the clock: a rerun that changes nothing adds nothing."""
    h = hashlib.sha256()
    for row in board.to_pylist():
        h.update(json.dumps(row, sort_keys=True, default=_exact).encode())
        h.update(b"\n")
    keys = ("data", "params", "weights") + tuple(k for k in ("schedule", "final_picks") if provenance.get(k))
    h.update(json.dumps({k: provenance.get(k) for k in keys}, sort_keys=True).encode())
    return h.hexdigest()


def _exact(value):
    return repr(value)


def _write_snapshot(folder: Path, snapshot: Snapshot) -> Path:
    """Create the snapshot file once; an existing snapshot is never replaced."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{snapshot.name}.parquet"
    tmp = folder / f".{snapshot.name}.{os.getpid()}.tmp"
    table = snapshot.board.replace_schema_metadata(
        {PROVENANCE_KEY: json.dumps(snapshot.provenance, sort_keys=True).encode()}
    )
    pq.write_table(table, tmp, compression="zstd", write_statistics=True, store_schema=True)
    try:
        os.link(tmp, final)  # fails if a snapshot of that name exists
    finally:
        tmp.unlink(missing_ok=True)
    final.chmod(0o444)
    return final


def _snapshot_name(now: datetime, previous: str | None) -> str:
    """The UTC time of the snapshot, kept strictly after the previous one so names stay ordered."""
    when = now.astimezone(UTC).replace(microsecond=0)
    if previous is not None:
        last = datetime.strptime(previous, SNAPSHOT_TIME).replace(tzinfo=UTC)
        when = max(when, last + timedelta(seconds=1))
    return when.strftime(SNAPSHOT_TIME)


# --- diffs ----------------------------------------------------------------------------------------


@dataclass
class BoardDiff:
    previous: str | None
    new_entries: list[dict] = field(default_factory=list)  # track, team, baseline, rank
    dropped: list[dict] = field(default_factory=list)
    rank_changes: list[dict] = field(default_factory=list)  # track, team, before, after
    score_changes: list[dict] = field(default_factory=list)  # track, team, task (None: the mean), column, before, after

    @property
    def empty(self) -> bool:
        return not (self.new_entries or self.dropped or self.rank_changes or self.score_changes)


def diff_boards(current: pa.Table, previous: pa.Table | None, previous_name: str | None) -> BoardDiff:
    diff = BoardDiff(previous_name)
    if previous is None:
        return diff

    def rows(board: pa.Table) -> dict:
        return {(r["track"], r["team"], r["task"]): r for r in board.to_pylist()}

    now, before = rows(current), rows(previous)
    for key in sorted(now, key=_key_order):
        r = now[key]
        old = before.get(key)
        if r["level"] == "track":
            if old is None:
                diff.new_entries.append(
                    {"track": r["track"], "team": r["team"], "baseline": r["baseline"], "rank": r["rank"]}
                )
                continue
            if r["rank"] != old["rank"] and not r["baseline"]:
                diff.rank_changes.append(
                    {"track": r["track"], "team": r["team"], "before": old["rank"], "after": r["rank"]}
                )
        if old is None:
            continue
        for column in ("public", "private"):
            if not _same(r[column], old[column]):
                diff.score_changes.append(
                    {
                        "track": r["track"],
                        "team": r["team"],
                        "task": r["task"],
                        "column": column,
                        "before": old[column],
                        "after": r[column],
                    }
                )
    for key in sorted(before, key=_key_order):
        if key not in now and before[key]["level"] == "track":
            diff.dropped.append({"track": key[0], "team": key[1], "baseline": before[key]["baseline"]})
    return diff


def _key_order(key: tuple) -> tuple:
    return (key[0], key[1], key[2] is not None, key[2] or "")


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=0, abs_tol=1e-12)


# --- the stage --------------------------------------------------------------------------------------


@dataclass
class LeaderboardResult:
    board: pa.Table
    snapshot: Snapshot
    previous: Snapshot | None
    history: list[Snapshot]
    diff: BoardDiff
    created: bool  # a new snapshot was written
    tasks: list[TaskMeta]
    closed: bool
    challenge: str
    files: list[Path] = field(default_factory=list)
    diagnostics: dict = field(default_factory=dict)  # team -> what it got wrong, per task (tasks/board/diagnostics.py)

    def summary(self) -> str:
        what = (
            f"new snapshot {self.snapshot.name}"
            if self.created
            else f"nothing changed since snapshot {self.snapshot.name}"
        )
        return f"leaderboard: {what}; {len(self.history)} snapshot(s) in the history"


def provenance_of(evaluation: dict, scores_path: Path, params: dict, code: dict, weights: dict) -> dict:
    return {
        "data": {
            "labels_sha256": {t: v["labels_sha256"] for t, v in sorted(evaluation["tasks"].items())},
            "scores_sha256": sha256_file(scores_path),
            "scorer_version": evaluation["scorer_version"],
            "submissions": evaluation["submissions"],
            "rejected": sum(evaluation.get("rejected", {}).values()),
            **({"unreleased": evaluation["unreleased"]} if evaluation.get("unreleased") else {}),
        },
        "code": code,
        "weights": weights,
        "params": params,
    }


def update_leaderboard(
    results_root: Path,
    leaderboard_root: Path,
    params: LeaderboardParams,
    challenge_name: str,
    closed: bool,
    now: datetime,
    code: dict,
    weights: dict,
    params_used: dict,
    schedule: dict | None = None,
    final_picks: dict[str, list[str]] | None = None,
) -> LeaderboardResult:
    """Build the board and snapshot it when something changed; rendering it is the caller's next step.

    `schedule` (the phase at `now`, see `schedule_of`) is kept in the snapshot and shown on the
    board; a change of phase makes a new snapshot. `final_picks` (team -> submission ids, the
    teams' final selections) decide which submission counts for the private ranking."""
    results_root, leaderboard_root = Path(results_root), Path(leaderboard_root)
    evaluation = read_evaluation(results_root)
    tasks = tasks_of(evaluation)
    scores = pq.read_table(results_root / SCORES)
    if params.ladder != "off":  # what the Ladder releases replaces each primary public score
        counts, groups = results_root / BOOTSTRAP_COUNTS, results_root / BOOTSTRAP_GROUPS
        scores = probing.ladder(
            scores,
            params.ladder,
            params.ladder_step,
            pq.read_table(counts) if counts.is_file() else None,
            pq.read_table(groups) if groups.is_file() else None,
            tasks,
            min(params.bootstrap.reps, 200) or 200,
            params.bootstrap.seed,
        )
    board = build_board(scores, tasks, evaluation.get("rejected", {}), params.policy, closed, final_picks=final_picks)
    board = aggregation.apply_rules(board, params.aggregation, closed)
    # under the Ladder the open board shows no public intervals: they would tell what it withholds
    laddered = params.ladder != "off" and not closed
    found = None if laddered else run_bootstrap(results_root, board, scores, tasks, params, closed)
    board = conform(uncertainty.attach(board, found, closed))
    board = probing.round_scores(board, params.public_decimals)  # what is published; results/ keeps full precision
    provenance = provenance_of(evaluation, results_root / SCORES, params_used, code, weights)
    if schedule:
        provenance["schedule"] = schedule
    if final_picks:
        provenance["final_picks"] = {team: sorted(ids) for team, ids in sorted(final_picks.items())}
    digest = board_digest(board, provenance)

    folder = leaderboard_root / SNAPSHOTS_DIR
    paths = list_snapshots(folder)
    last = read_snapshot(paths[-1]) if paths else None
    created = last is None or last.provenance.get("digest") != digest
    current: Snapshot
    if created or last is None:
        name = _snapshot_name(now, last.name if last else None)
        provenance |= {
            "snapshot": name,
            "created_at": f"{name[:4]}-{name[4:6]}-{name[6:8]}T{name[9:11]}:{name[11:13]}:{name[13:15]}Z",
            "previous": last.name if last else None,
            "digest": digest,
        }
        current = Snapshot(name, board, provenance)
        _write_snapshot(folder, current)
        paths = list_snapshots(folder)
    else:
        current = last
    history = [read_snapshot(p) for p in paths]
    index = [s.name for s in history].index(current.name)
    previous = history[index - 1] if index > 0 else None
    diff = diff_boards(current.board, previous.board if previous else None, previous.name if previous else None)
    per_team = diagnostics.team_diagnostics(
        results_root, uncertainty.entries_of(current.board, scores), tasks, closed, params.public_decimals
    )
    return LeaderboardResult(
        current.board, current, previous, history, diff, created, tasks, closed, challenge_name, diagnostics=per_team
    )


def run_bootstrap(
    results_root: Path,
    board: pa.Table,
    scores: pa.Table,
    tasks: list[TaskMeta],
    params: LeaderboardParams,
    closed: bool,
) -> uncertainty.Uncertainty | None:
    """The paired bootstrap of the board from the counts the evaluate stage kept; None when they
    are absent (an older evaluation) or `leaderboard.bootstrap.reps` is 0."""
    counts, groups = Path(results_root) / BOOTSTRAP_COUNTS, Path(results_root) / BOOTSTRAP_GROUPS
    if params.bootstrap.reps == 0 or not counts.is_file() or not groups.is_file():
        return None
    splits = [PUBLIC, PRIVATE] if closed else [PUBLIC]
    return uncertainty.bootstrap(
        uncertainty.entries_of(board, scores),
        tasks,
        pq.read_table(counts),
        pq.read_table(groups),
        splits,
        params.bootstrap.reps,
        params.bootstrap.seed,
        params.bootstrap.level,
    )


def current_result(
    results_root: Path, leaderboard_root: Path, closed: bool, challenge_name: str
) -> LeaderboardResult | None:
    """The board as the last leaderboard stage left it (its newest snapshot), for showing it again."""
    paths = list_snapshots(Path(leaderboard_root) / SNAPSHOTS_DIR)
    if not paths or not (Path(results_root) / SCORES).is_file():
        return None
    history = [read_snapshot(p) for p in paths]
    current, previous = history[-1], (history[-2] if len(history) > 1 else None)
    diff = diff_boards(current.board, previous.board if previous else None, previous.name if previous else None)
    tasks = tasks_of(read_evaluation(Path(results_root)))
    closed = (current.provenance.get("schedule") or {}).get("closed", closed)  # as the stage decided it
    return LeaderboardResult(current.board, current, previous, history, diff, False, tasks, closed, challenge_name)


def schedule_of(state: ChallengeState, phases: list[Phase]) -> dict:
    """What the board shows of the schedule: the state at the snapshot's time and every phase."""
    return {
        "state": state.line(),
        "phase": state.phase.name if state.phase else None,
        "ends": state.phase.end if state.phase else None,
        "closed": state.closed,
        "phases": [{"name": p.name, "start": p.start, "end": p.end} for p in phases],
    }


def snapshot_time(env: Mapping[str, str] | None = None) -> datetime:
    """Now, or SOURCE_DATE_EPOCH when set (reproducible builds, tests)."""
    epoch = (os.environ if env is None else env).get("SOURCE_DATE_EPOCH")
    if epoch:
        return datetime.fromtimestamp(int(epoch), tz=UTC)
    return datetime.now(UTC)


# --- provenance helpers (facts of the environment, gathered at the edge) ------------------------------

CODE_SUFFIXES = (".py", ".sql", ".j2", ".css", ".js")


def code_identity(project_root: Path) -> dict:
    """The code that produced a board: package version, git commit, and a hash of the stage code."""
    root = Path(project_root)
    h = hashlib.sha256()
    tasks_dir = Path(__file__).resolve().parents[1]
    for path in sorted(
        p for p in tasks_dir.rglob("*") if p.is_file() and p.suffix in CODE_SUFFIXES and "__pycache__" not in p.parts
    ):
        h.update(path.relative_to(tasks_dir).as_posix().encode() + b"\0" + path.read_bytes())
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--verify", "HEAD"], cwd=root, capture_output=True, text=True, timeout=20
        )
        commit = found.stdout.strip() if found.returncode == 0 and found.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"  # not a git checkout, or no commit yet
    return {"mmtc": __version__, "git_commit": commit, "code_sha256": h.hexdigest()}


def weights_identity(project_root: Path) -> dict:
    """The CLIP weights in use, as resolved by the embed stage; `absent` when it has not run."""
    path = Path(project_root) / WEIGHTS_IDENTITY
    if not path.is_file():
        return {
            "status": "absent",
            "file": WEIGHTS_IDENTITY.as_posix(),
            "note": "the embed stage has not resolved weights; baselines may not use them",
        }
    try:
        return {
            "status": "resolved",
            "file": WEIGHTS_IDENTITY.as_posix(),
            "identity": json.loads(path.read_text(encoding="utf-8")),
        }
    except (OSError, ValueError):
        return {"status": "unknown", "file": WEIGHTS_IDENTITY.as_posix(), "note": "weights.json is not valid JSON"}
