"""The challenge pipeline as a Prefect flow: every DVC stage (every task of a foreach stage)
is a Prefect task running `dvc repro -s <stage>`.

DVC decides what is stale; Prefect decides when and where: independent tasks run at once
(a thread pool, `orchestration.concurrency`), transient failures are retried, each stage's
output streams into the Prefect logs (with a progress line every
`orchestration.progress_every_s` seconds from the long stages), the flow says which stages
are running and which wait, and nothing is cached on Prefect's side. Train stages with the
largest tuning budget start first, so the time the challenge's budget buys is spent in
parallel rather than at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from flows.dvc_stages import StageRun, outputs_digest, plan, plan_with_stale, repro_stage, visit_after
from tasks.core.params import OrchestrationParams, load_params
from tasks.core.progress import PROGRESS_EVERY_ENV
from tasks.core.schema import TRAIN_BUDGET_ROOT
from tasks.train.budget import read_budget

LEADERBOARD_MD = Path("leaderboard/latest.md")
LEADERBOARD_HTML = Path("leaderboard/latest.html")


class StageFailed(RuntimeError):
    def __init__(self, run: StageRun):
        self.run = run
        tail = "\n".join(run.tail[-25:])
        super().__init__(f"stage {run.stage} failed (exit {run.returncode}); last lines of its log:\n{tail}")


def _retry_if_transient(task, task_run, state) -> bool:
    """Retry a busy lock or a dropped connection; a real error (bad data, a bug) fails at once."""
    try:
        state.result()
    except StageFailed as exc:
        return exc.run.transient
    except Exception:  # anything unexpected may be transient
        return True
    return False


@task(
    name="dvc-stage",
    task_run_name="{stage}",
    cache_policy=NO_CACHE,
    persist_result=False,
    retry_condition_fn=_retry_if_transient,
)
def run_stage(repo: str, stage: str, remote: str | None = None, progress_every_s: float = 5) -> dict:
    logger = get_run_logger()
    run = repro_stage(Path(repo), stage, logger.info, remote=remote, env={PROGRESS_EVERY_ENV: str(progress_every_s)})
    if run.returncode != 0:
        raise StageFailed(run)
    return {"stage": stage, "ran": bool(run.ran), "seconds": round(run.seconds, 2)}


@dataclass
class Summary:
    ran: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)  # handed to `dvc repro` (ran, or found up to date by it)
    seconds: float = 0.0
    leaderboard: str | None = None

    def as_dict(self) -> dict:
        return {
            "ran": sorted(self.ran),
            "up_to_date": sorted(self.up_to_date),
            "failed": sorted(self.failed),
            "blocked": sorted(self.blocked),
            "started": sorted(self.started),
            "duration_s": round(self.seconds, 1),
            "leaderboard": self.leaderboard,
        }


def is_per_task(stage: str) -> bool:
    return "@" in stage


def start_order(repo: Path, stage: str) -> tuple[float, str]:
    """Which ready stage starts first: train stages by their tuning budget, largest first
    (the longest jobs first keeps both slots busy to the end); then by name."""
    name, _, task = stage.partition("@")
    budget = read_budget(repo / TRAIN_BUDGET_ROOT, task) if name == "train" and task else None
    return (-(budget or 0.0), stage)


def _log(message: str) -> None:
    try:
        get_run_logger().info(message)
    except Exception:  # outside a flow run (unit tests call run_stages directly)
        print(message)


def run_stages(repo: Path, targets: list[str] | None, settings: OrchestrationParams) -> Summary:
    """Submit each stage once its upstream stages have finished.

    A failed per-task stage blocks only the rest of that task's chain; a stage that gathers all
    tasks (evaluate, leaderboard) still runs over the tasks that made it, so one bad
    contribution does not stop the challenge.
    """
    start = time.perf_counter()
    stage_task = run_stage.with_options(retries=settings.retries, retry_delay_seconds=settings.retry_delay_seconds)
    graph, visit, stale = plan_with_stale(repo, targets)
    summary = Summary()
    outcome: dict[str, str] = {}  # stage -> completed|failed|blocked|skipped
    running: dict[str, Any] = {}

    def finished(stage: str, future) -> None:
        summary.started.append(stage)
        try:
            result = future.result()
        except Exception as exc:  # reported, and the flow fails below
            outcome[stage] = "failed"
            summary.failed[stage] = str(exc)
            _log(f"stage {stage} FAILED; {_state()}")
        else:
            outcome[stage] = "completed"
            (summary.ran if result["ran"] else summary.up_to_date).append(stage)
            how = f"ran in {result['seconds']:.0f} s" if result["ran"] else "up to date"
            _log(f"stage {stage} {how}; {_state()}")

    def _state() -> str:
        waiting = len(visit - set(outcome) - set(running))
        now = ", ".join(sorted(running)) or "none"
        return f"running: {now}; waiting: {waiting}; done: {len(outcome)} of {len(visit | set(checks))}"

    def submit(stage: str):
        running[stage] = stage_task.submit(str(repo), stage, settings.remote, settings.progress_every_s)
        _log(f"stage {stage} started; {_state()}")
        return running[stage]

    # Always-changed stages (resolve_weights) are cheap checks whose output decides what is
    # stale below them: run them first, then ask DVC again, so that an unchanged answer does
    # not send every downstream stage through `dvc repro` just to be skipped.
    checks = sorted(
        s for s in visit if graph.nodes[s].get("always_changed") and not any(p in visit for p in graph.predecessors(s))
    )
    before = outputs_digest(repo, graph, checks)
    for stage in checks:
        future = submit(stage)
        del running[stage]
        finished(stage, future)
    if checks and not summary.failed:
        if outputs_digest(repo, graph, checks) == before:
            # the checks changed nothing: what DVC found stale still holds, without asking it again
            visit = visit_after(graph, stale, frozenset(checks))
        else:
            graph, visit = plan(repo, targets, done=frozenset(checks))
    visit -= set(checks)
    skipped = set(graph) - visit - set(checks)
    summary.up_to_date.extend(sorted(skipped))
    outcome.update(dict.fromkeys(skipped, "skipped"))

    def ready(stage: str) -> bool:
        return all(p in outcome for p in graph.predecessors(stage))

    def submit_ready() -> None:
        for stage in sorted(visit - set(outcome) - set(running), key=lambda s: start_order(repo, s)):
            if len(running) >= settings.concurrency:
                return
            if not ready(stage):
                continue
            failed_up = [p for p in graph.predecessors(stage) if outcome[p] in ("failed", "blocked")]
            gathers = not is_per_task(stage) and all(is_per_task(p) for p in failed_up)
            if failed_up and not gathers:
                outcome[stage] = "blocked"
                summary.blocked.append(stage)
                continue
            submit(stage)

    submit_ready()
    while running:
        future = next(as_completed(list(running.values())))
        stage = next(s for s, f in running.items() if f is future)
        del running[stage]
        finished(stage, future)
        submit_ready()
    never = sorted(visit - set(outcome))  # unreachable unless the graph has a cycle DVC allowed
    summary.blocked.extend(never)
    summary.seconds = time.perf_counter() - start
    return summary


def publish(repo: Path, summary: Summary) -> None:
    md = repo / LEADERBOARD_MD
    if md.is_file():
        create_markdown_artifact(
            markdown=md.read_text(encoding="utf-8"), key="leaderboard", description="The leaderboard after this run"
        )
    if (repo / LEADERBOARD_HTML).is_file():
        summary.leaderboard = str(repo / LEADERBOARD_HTML)


# The pool is sized for the largest concurrency anyone sets; run_stages keeps at most
# `orchestration.concurrency` stages in flight, so the knob lives in params.yaml.
# (Prefect 3.8 types @flow's task_runner as TaskRunner[PrefectFuture], an invariant generic that its
# own ThreadPoolTaskRunner[PrefectConcurrentFuture] does not match: the one ignore of our code.)
@flow(
    name="challenge-pipeline",
    persist_result=False,
    log_prints=True,
    task_runner=ThreadPoolTaskRunner(max_workers=32),  # type: ignore[arg-type]
)
def challenge_pipeline(repo: str = ".", targets: list[str] | None = None, params_file: str = "params.yaml") -> dict:
    """Run every stale stage of the pipeline (or of `targets` and their upstream), then publish the board."""
    logger = get_run_logger()
    root = Path(repo).resolve()
    settings = load_params(root / params_file).orchestration
    summary = run_stages(root, targets, settings)
    publish(root, summary)
    logger.info("pipeline summary: %s", summary.as_dict())
    if summary.failed or summary.blocked:
        failures = "\n\n".join(summary.failed.values())
        raise RuntimeError(
            f"{len(summary.failed)} stage(s) failed: {', '.join(sorted(summary.failed))}; blocked: {', '.join(sorted(summary.blocked)) or 'none'}\n{failures}"
        )
    return summary.as_dict()


if __name__ == "__main__":
    print(challenge_pipeline())
