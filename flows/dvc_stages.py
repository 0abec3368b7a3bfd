"""Talking to DVC from the flows: the stage graph, what is stale, and one stage's repro.

DVC is the one cache and the judge of staleness; the flows only decide when and where a
stage runs. Everything here shells out to the `dvc` command, as a person would.
"""

from __future__ import annotations

import collections
import hashlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

TRANSIENT = ("is busy", "Unable to acquire lock", "Lock file", "Connection reset", "Temporary failure", "timed out")
TAIL_LINES = 40


def tool_env() -> dict[str, str]:
    """The environment stage commands need: this interpreter's scripts (mmtc, dvc) first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def dvc(args: list[str], repo: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["dvc", *args], cwd=repo, env=tool_env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result


def stage_graph_and_status(repo: Path) -> tuple[nx.DiGraph, set[str]]:
    """Every stage of dvc.yaml (foreach stages expanded), edges from a stage to those that use its
    outputs; and the stages DVC would rerun now (changed deps, params, outs or command, missing
    outputs, always_changed). One DVC process-free call: the CLI would cost a second per command.
    """
    from dvc.repo import Repo
    from dvc.stage import PipelineStage

    with Repo(str(repo)) as dvc_repo:
        dependency_graph = dvc_repo.index.graph  # stage -> the stages it depends on
        # Names as `dvc repro` takes them from the repo root. Data tracked by `dvc add`
        # (.dvc files) are sources, not steps to run.
        names = {stage: stage.name for stage in dependency_graph if isinstance(stage, PipelineStage)}
        graph = nx.DiGraph()
        graph.add_nodes_from(
            (
                name,
                {
                    "always_changed": bool(stage.always_changed),
                    "outs": [os.path.relpath(out.fs_path, str(repo)) for out in stage.outs],
                },
            )
            for stage, name in names.items()
        )
        graph.add_edges_from(
            (names[dep], names[stage]) for stage, dep in dependency_graph.edges if stage in names and dep in names
        )
        by_address = {stage.addressing: name for stage, name in names.items()}  # status() keys by address
        stale = {by_address[address] for address in dvc_repo.status() if address in by_address}
    return graph, stale


def plan(
    repo: Path, targets: list[str] | None = None, done: frozenset[str] = frozenset()
) -> tuple[nx.DiGraph, set[str]]:
    graph, visit, _ = plan_with_stale(repo, targets, done)
    return graph, visit


def visit_after(graph: nx.DiGraph, stale: set[str], done: frozenset[str]) -> set[str]:
    """The stages to visit once `done` ran and changed no output: the stale ones and what is below them."""
    stale = set(stale) - done
    visit = set(stale)
    for stage in stale:
        visit |= nx.descendants(graph, stage)
    return visit


def outputs_digest(repo: Path, graph: nx.DiGraph, stages: list[str]) -> str:
    """A digest of the stages' output files (an always-changed check writes one small file)."""
    h = hashlib.sha256()
    for stage in sorted(stages):
        for out in sorted(graph.nodes[stage].get("outs", [])):
            path = Path(repo) / out
            h.update(out.encode() + b"\0")
            if path.is_file():
                h.update(hashlib.sha256(path.read_bytes()).digest())
            elif path.is_dir():
                for f in sorted(p for p in path.rglob("*") if p.is_file()):
                    h.update(str(f.relative_to(path)).encode() + hashlib.sha256(f.read_bytes()).digest())
            else:
                h.update(b"absent")
    return h.hexdigest()


def plan_with_stale(
    repo: Path, targets: list[str] | None = None, done: frozenset[str] = frozenset()
) -> tuple[nx.DiGraph, set[str], set[str]]:
    """The graph restricted to the targets and their upstream, and which of its stages must be visited.

    A stage must be visited when it is stale or anything upstream of it must be: DVC then
    decides for real, after its inputs were rebuilt, whether it reruns. Stages in `done`
    ran already in this run (an always-changed check) and are not visited again.
    """
    graph, stale = stage_graph_and_status(repo)
    if targets:
        keep = set()
        for target in targets:
            matches = [n for n in graph if n == target or n.startswith(f"{target}@")]
            if not matches:
                raise ValueError(f"no DVC stage named {target!r}; stages are: {', '.join(sorted(graph))}")
            for node in matches:
                keep |= {node} | nx.ancestors(graph, node)
        graph = graph.subgraph(keep).copy()
    stale = stale & set(graph)
    return graph, visit_after(graph, stale, done), stale


@dataclass
class StageRun:
    stage: str
    returncode: int
    seconds: float
    ran: list[str] = field(default_factory=list)  # stages DVC reports it ran
    tail: list[str] = field(default_factory=list)

    @property
    def transient(self) -> bool:
        return self.returncode != 0 and any(t in line for line in self.tail for t in TRANSIENT)


def repro_stage(
    repo: Path, stage: str, log: Callable[[str], None], remote: str | None = None, env: dict[str, str] | None = None
) -> StageRun:
    """`dvc repro -s <stage>`, each output line handed to `log` as it comes; `env` adds to the stage's environment.

    With a DVC remote, the stage's inputs are pulled first and its outputs pushed after, so
    that workers on other machines, each in its own clone, can share the work.
    """
    start = time.perf_counter()
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    ran: list[str] = []
    commands = [["dvc", "repro", "--single-item", stage]]
    if remote:
        # --with-deps fetches the outputs of every upstream stage: this stage's inputs
        commands = [
            ["dvc", "pull", "--remote", remote, "--allow-missing", "--with-deps", stage],
            *commands,
            ["dvc", "push", "--remote", remote, stage],
        ]
    returncode = 0
    for cmd in commands:
        with subprocess.Popen(
            cmd,
            cwd=repo,
            env=tool_env() | (env or {}),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                tail.append(line)
                log(line)
                found = re.match(r"Running stage '([^']+)'", line)
                if found:
                    ran.append(found.group(1))
            returncode = proc.wait()
        if returncode != 0:
            break
    return StageRun(stage, returncode, time.perf_counter() - start, ran, list(tail))
