"""`mmtc`: one subcommand per stage, each a thin call into tasks/.

Params are read here, once, and each stage gets only its own section. Bad input is caught
here too, printed with its fix, and turned into exit status 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tasks.core.clock import utc_now
from tasks.core.errors import InputError, InputErrors
from tasks.core.files import write_json
from tasks.core.params import load_params
from tasks.core.schema import (
    CONTRIBUTIONS_ROOT,
    EMBED_METRICS_ROOT,
    EMBEDDINGS_ROOT,
    LEADERBOARD_ROOT,
    MODELS_ROOT,
    PRIVATE_ROOT,
    PUBLIC_ROOT,
    REJECTED_DIR,
    RESULTS_ROOT,
    SUBMISSIONS_ROOT,
    TRAIN_BUDGET_ROOT,
    TRAIN_METRICS_ROOT,
)

# The folder options of the stage commands, with their defaults: the layout of tasks/core/schema.py.
PATH_OPTIONS = {
    "contributions": CONTRIBUTIONS_ROOT,
    "public": PUBLIC_ROOT,
    "private": PRIVATE_ROOT,
    "embeddings": EMBEDDINGS_ROOT,
    "models": MODELS_ROOT,
    "submissions": SUBMISSIONS_ROOT,
    "results": RESULTS_ROOT,
}


def _paths(p: argparse.ArgumentParser, *names: str) -> None:
    for name in names:
        p.add_argument(f"--{name}", type=Path, default=PATH_OPTIONS[name])


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], Callable[[argparse.ArgumentParser], object], str]] = {}


def command(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], object] = lambda p: None):
    """Register a subcommand: its function, how it takes its arguments, one line of help."""

    def register(fn):
        COMMANDS[name] = (fn, arguments, help)
        return fn

    return register


# --- demo ---------------------------------------------------------------------------------


@command(
    "demo",
    "write the raw contribution of one bundled demo task (the first DVC stage)",
    lambda p: (p.add_argument("task"), p.add_argument("--out", type=Path, help="default: contributions/<task>")),
)
def cmd_demo(a: argparse.Namespace) -> int:
    from tasks.demo.generators import generate_contribution

    params = load_params(a.params)
    out = a.out or CONTRIBUTIONS_ROOT / a.task
    generate_contribution(a.task, out, params.demo.seed, params.demo.tasks.get(a.task, {}))
    print(f"demo contribution written to {out}")
    return 0


# --- ingest -------------------------------------------------------------------------------


def _ingest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", help="task id: the folder name under --contributions")
    _paths(p, "contributions", "public", "private")


@command("ingest", "validate, standardise and split one task into data/public and data/private", _ingest_args)
def cmd_ingest(a: argparse.Namespace) -> int:
    from tasks.ingest.stage import ingest_task

    params = load_params(a.params)
    report = ingest_task(a.contributions / a.task, a.public, a.private, params.ingest)
    print(f"ingested {report.summary()}")
    # Findings may name hidden test classes, and stage logs can be published: only the path is printed.
    print(f"  organiser report (private, review it): {report.organiser_report}")
    return 0


@command(
    "validate-task",
    "check a contribution against its manifest without writing anything",
    lambda p: p.add_argument("path", type=Path),
)
def cmd_validate_task(a: argparse.Namespace) -> int:
    from tasks.ingest.stage import validate_task

    manifest = validate_task(a.path, load_params(a.params).ingest)
    print(f"{manifest.id}: the contribution is valid ({manifest.type.value}, track {manifest.track})")
    return 0


def _add_task_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, help="folder holding task.yaml and the raw files")
    p.add_argument("--replace", action="store_true", help="replace an already added task of the same id")
    _paths(p, "contributions")
    p.add_argument("--no-dvc", action="store_true", help="copy and register only; do not run `dvc add`")


@command(
    "add-task",
    "validate a new contribution, copy it to contributions/, track it with DVC and register it",
    _add_task_args,
)
def cmd_add_task(a: argparse.Namespace) -> int:
    from tasks.ingest.registry import register_task
    from tasks.ingest.stage import validate_task

    params = load_params(a.params)
    manifest = validate_task(a.path, params.ingest)
    if manifest.id in params.demo.tasks:
        raise InputError(
            problem=f"'{manifest.id}' is a demo task written by the demo stage",
            fix="give the contribution another id",
            task=manifest.id,
            file="task.yaml",
        )
    dest = a.contributions / manifest.id
    if a.path.resolve() != dest.resolve():
        if dest.exists() and not a.replace:
            raise InputError(
                problem=f"{dest} exists already",
                fix="pass --replace to publish a new version of the task",
                task=manifest.id,
            )
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(a.path, dest)
    if not a.no_dvc:
        subprocess.run(["dvc", "add", str(dest)], check=True)
    added = register_task(a.params, manifest.id)
    print(f"{manifest.id}: added{' and registered in ' + str(a.params) if added else ''}.")
    print(f"next: git add {dest}.dvc {a.contributions}/.gitignore {a.params} && git commit; dvc push; dvc repro")
    return 0


# --- embed --------------------------------------------------------------------------------
# --- submissions, evaluation, leaderboard ---------------------------------------------------


def _submit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "path", type=Path, help="a folder with one file per task (<task>.csv or <task>.parquet), or one such file"
    )
    p.add_argument("--team", required=True, help="team name: a slug (lower-case letters, digits, hyphens)")
    p.add_argument("--name", help="submission name, a slug (default: from the path)")
    p.add_argument("--description", default="", help="one line of plain text shown with the submission")
    _paths(p, "submissions", "public")


@command(
    "submit",
    "check a team's predictions against the public release and the phases, and record them (accepted or rejected); "
    "MMTC_NOW fixes the time",
    _submit_args,
)
def cmd_submit(a: argparse.Namespace) -> int:
    from tasks.submissions.submit import submit
    from tasks.submissions.validate import load_contracts

    params = load_params(a.params)
    result = submit(
        a.path,
        a.team,
        submissions_root=a.submissions,
        contracts=load_contracts(a.public, params.challenge.tasks),
        params=params.submit,
        name=a.name,
        description=a.description,
        now=utc_now(),
        phases=params.challenge.schedule(),
        closed=params.challenge.closed,
    )
    print(result.summary(), file=sys.stdout if result.accepted else sys.stderr)
    return 0 if result.accepted else 2


def _intake_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inbox", type=Path, help="default: nightly.inbox")
    _paths(p, "submissions", "public")
    p.add_argument("--no-version", action="store_true", help="do not `dvc add` what was taken in (nightly.version)")
    p.add_argument("--commit", action="store_true", help="git-commit the submissions' pointers (also nightly.commit)")
    p.add_argument("--push", action="store_true", help="dvc push the submissions (also nightly.push)")
    p.add_argument("--report", type=Path, help="write the outcome of every upload to this JSON file")


@command(
    "intake",
    "submit every upload waiting in the inbox (<inbox>/<team>/<upload>), each recorded before it leaves; "
    "version them with DVC (and git); MMTC_NOW fixes the time",
    _intake_args,
)
def cmd_intake(a: argparse.Namespace) -> int:
    from tasks.submissions.intake import folders_to_version, take_in, version_folders
    from tasks.submissions.validate import load_contracts

    params = load_params(a.params)
    now = utc_now()
    demo_teams = sorted(params.demo_teams.teams)
    report = take_in(
        a.inbox or Path(params.nightly.inbox),
        a.submissions,
        contracts=load_contracts(a.public, params.challenge.tasks),
        params=params.submit,
        now=now,
        phases=params.challenge.schedule(),
        closed=params.challenge.closed,
        reserved_teams=demo_teams,
    )
    print(report.summary())
    outcome = report.as_dict()
    if params.nightly.version and not a.no_version:
        folders = folders_to_version(
            a.submissions, report.changed, outputs=demo_teams + [f"{REJECTED_DIR}/{t}" for t in demo_teams]
        )
        outcome["versioned"] = version_folders(
            Path.cwd(),
            folders,
            f"Intake {now:%Y-%m-%dT%H:%M:%SZ}: {len(report.of('accepted'))} accepted, "
            f"{len(report.of('rejected'))} rejected",
            commit=a.commit or params.nightly.commit,
            push=a.push or params.nightly.push,
        )
        print(f"versioned: {outcome['versioned']}")
    if a.report:
        write_json(a.report, outcome)
    return 0


@command(
    "schedule",
    "write the challenge's state (open phase, closed) to leaderboard/schedule.json; MMTC_NOW fixes the time",
    lambda p: p.add_argument("--out", type=Path, default=None, help="default: leaderboard/schedule.json"),
)
def cmd_schedule(a: argparse.Namespace) -> int:
    from tasks.core.clock import challenge_state, state_record
    from tasks.core.schema import SCHEDULE_STATE

    state = challenge_state(load_params(a.params).challenge, utc_now())
    write_json(a.out or SCHEDULE_STATE, state_record(state))
    print(f"schedule: {state.line()}")
    return 0


def _select_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--team", required=True, help="the team's name")
    p.add_argument(
        "submission_ids",
        nargs="*",
        metavar="SUBMISSION_ID",
        help="accepted submissions of the team (none: withdraw the selection, the policy's pick counts)",
    )
    _paths(p, "submissions")


@command(
    "select",
    "mark up to leaderboard.final_selections submissions of a team as final (before the close; last call wins); "
    "MMTC_NOW fixes the time",
    _select_args,
)
def cmd_select(a: argparse.Namespace) -> int:
    from tasks.submissions.selection import select_finals

    params = load_params(a.params)
    record = select_finals(
        a.submissions,
        a.team,
        a.submission_ids,
        challenge=params.challenge,
        max_selections=params.leaderboard.final_selections,
        now=utc_now(),
    )
    chosen = ", ".join(record.submission_ids) or "none (the policy's pick counts)"
    print(f"{record.team}: final selection version {record.version} at {record.selected_at}: {chosen}")
    return 0


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    _paths(p, "submissions", "public", "private", "results")


@command(
    "evaluate", "score every stored submission against the hidden labels (DuckDB; cached by content)", _evaluate_args
)
def cmd_evaluate(a: argparse.Namespace) -> int:
    from tasks.scoring.evaluate import evaluate, unreleased_tasks

    params = load_params(a.params)
    report = evaluate(a.submissions, a.public, a.private, params.challenge.tasks, a.results, params.evaluate)
    print(f"evaluate: {report.summary()}")
    for task, why in unreleased_tasks(a.public, a.private, params.challenge.tasks).items():
        print(f"  task {task} not scored: {why}")
    for item in report.invalid:
        print(f"  not scored: {item['submission']}: {item['problem']}")
    return 0


def _leaderboard_args(p: argparse.ArgumentParser) -> None:
    _paths(p, "results", "submissions")
    p.add_argument("--out", type=Path, default=LEADERBOARD_ROOT)
    p.add_argument("--quiet", action="store_true", help="do not print the board")


@command(
    "leaderboard",
    "rank teams per track (final selections once closed), snapshot the board when it changed, write "
    "leaderboard/latest.*; MMTC_NOW fixes the time that decides the phase",
    _leaderboard_args,
)
def cmd_leaderboard(a: argparse.Namespace) -> int:
    from tasks.board.render import build_view, render_terminal, write_latest
    from tasks.board.snapshots import code_identity, schedule_of, snapshot_time, update_leaderboard, weights_identity
    from tasks.core.clock import NOW_ENV, challenge_state
    from tasks.submissions.selection import read_final_picks

    params = load_params(a.params)
    board_params = params.leaderboard
    now = utc_now() if os.environ.get(NOW_ENV) else snapshot_time()
    state = challenge_state(params.challenge, now)
    result = update_leaderboard(
        a.results,
        a.out,
        board_params,
        challenge_name=params.challenge.name,
        closed=state.closed,
        now=now,
        code=code_identity(Path.cwd()),
        weights=weights_identity(Path.cwd()),
        params_used={"challenge": params.challenge.model_dump(), "leaderboard": board_params.model_dump()},
        schedule=schedule_of(state, params.challenge.schedule()),
        final_picks=read_final_picks(a.submissions),
    )
    result.files = write_latest(result, a.out)
    if not a.quiet:
        render_terminal(build_view(result))
    print(result.summary())
    print("written: " + ", ".join(str(p) for p in result.files))
    return 0


def _demo_teams_args(p: argparse.ArgumentParser) -> None:
    _paths(p, "public", "submissions")


@command(
    "demo-teams",
    "(demo) replace the demo teams' submissions: seeded predictions from the public release, submitted like `mmtc submit`",
    _demo_teams_args,
)
def cmd_demo_teams(a: argparse.Namespace) -> int:
    from tasks.demo.teams import generate_demo_teams
    from tasks.submissions.validate import load_contracts, unreleased

    params = load_params(a.params)
    results = generate_demo_teams(
        a.public,
        a.submissions,
        load_contracts(a.public, params.challenge.tasks),
        params.submit,
        params.demo_teams,
        params.challenge.opens_at,
        phases=params.challenge.schedule(),
    )
    for r in results:
        print(r.summary().splitlines()[0])
    for task, why in unreleased(a.public, params.challenge.tasks).items():
        print(f"  task {task} left out: {why}")
    return 0


# --- train --------------------------------------------------------------------------------


def _train_budget_args(p: argparse.ArgumentParser) -> None:
    _paths(p, "public")
    p.add_argument("--out", type=Path, default=TRAIN_BUDGET_ROOT, help="one <task>.json per task")


@command(
    "train-budget",
    "share train.budget.challenge_s among the tasks by rows x classes (floor train.budget.task_floor_s)",
    _train_budget_args,
)
def cmd_train_budget(a: argparse.Namespace) -> int:
    from tasks.train.budget import write_budgets

    params = load_params(a.params)
    written = write_budgets(a.public, params.challenge.tasks, params.train.budget, a.out)
    for task, entry in sorted(written.items(), key=lambda kv: -kv[1]["seconds"]):
        print(f"{task}: {entry['seconds']} s of tuning ({entry['rows']} rows x {entry['classes']} classes)")
    for task in sorted(set(params.challenge.tasks) - set(written)):
        print(f"{task}: no release yet (its ingest has not succeeded): no budget written")
    return 0


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("task")
    _paths(p, "public", "embeddings", "models", "submissions")
    p.add_argument("--metrics", type=Path, default=TRAIN_METRICS_ROOT)
    p.add_argument("--budget", type=Path, default=TRAIN_BUDGET_ROOT, help="the train_budget stage's folder")
    p.add_argument("--budget-s", type=float, help="tuning seconds for this task (default: its share in --budget)")


@command("train", "tune CatBoost on one task and write its model, metrics and baseline submissions", _train_args)
def cmd_train(a: argparse.Namespace) -> int:
    from tasks.train.budget import read_budget
    from tasks.train.stage import train_task

    params = load_params(a.params)
    budget_s = a.budget_s if a.budget_s is not None else read_budget(a.budget, a.task)
    if budget_s is None:
        budget_s = params.train.budget.task_floor_s or None
        print(
            f"note: no tuning budget of {a.task} in {a.budget} (run `mmtc train-budget`); using the floor, {budget_s} s"
        )
    report = train_task(
        a.task,
        a.public,
        a.embeddings,
        a.models,
        a.metrics,
        a.submissions,
        params.train,
        params.challenge.opens_at,
        budget_s=budget_s,
        progress=True,
        submit_params=params.submit,
    )
    print(report.summary())
    return 0


def _tune_worker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("task")
    p.add_argument(
        "--storage", help="Optuna storage shared by the workers: an RDB URL or journal:<path> (default: train.storage)"
    )
    p.add_argument(
        "--worker",
        type=int,
        default=1,
        help="worker number; TPE samples with train.seed + worker (the train stage is worker 0)",
    )
    p.add_argument(
        "--n-trials", type=int, help="stop when the study holds this many finished trials (default: train.n_trials)"
    )
    p.add_argument(
        "--timeout", type=float, help="seconds (default: the task's share in data/train_budget, else the floor)"
    )
    _paths(p, "public", "embeddings")


@command("tune-worker", "join the Optuna study of one task in a shared storage and run trials", _tune_worker_args)
def cmd_tune_worker(a: argparse.Namespace) -> int:
    from tasks.train.budget import read_budget
    from tasks.train.stage import prepare
    from tasks.train.tune import open_study, run_trials

    params = load_params(a.params).train
    storage = a.storage or params.storage
    if not storage:
        raise InputError(
            problem="a tune worker needs a shared study storage",
            fix="pass --storage journal:<path> or an RDB URL, or set train.storage in params.yaml",
        )
    release, problem = prepare(a.task, a.public, a.embeddings, params)
    study = open_study(problem, params, worker=a.worker, storage=storage)
    n_trials = a.n_trials or params.n_trials
    stopped_by = run_trials(
        study,
        problem,
        params,
        release.primary_metric,
        n_trials=n_trials,
        timeout_s=a.timeout
        if a.timeout is not None
        else read_budget(TRAIN_BUDGET_ROOT, a.task) or params.budget.task_floor_s or None,
        worker=a.worker,
        progress=True,
    )
    mine = [t for t in study.trials if t.user_attrs.get("worker") == a.worker]
    print(
        f"{a.task}: worker {a.worker} ran {len(mine)} trial(s) in study {study.study_name}; the study holds {len(study.trials)} (stopped by {stopped_by})"
    )
    return 0


# --- the whole pipeline ------------------------------------------------------------------


@command(
    "resolve-weights",
    "decide which CLIP weights are in use (quick offline) and write their identity to data/embeddings/weights.json",
    lambda p: p.add_argument("--out", type=Path, default=None, help="default: data/embeddings/weights.json"),
)
def cmd_resolve_weights(a: argparse.Namespace) -> int:
    from tasks.core.schema import WEIGHTS_IDENTITY
    from tasks.embed.clip import resolve_weights_memoized, write_identity

    params = load_params(a.params)
    identity = resolve_weights_memoized(params.embed.clip, memo_dir=Path(params.embed.cache.dir))
    out = a.out or WEIGHTS_IDENTITY
    write_identity(identity, out)
    print(f"CLIP weights in use: {identity.label()} -> {out}")
    return 0


def _embed_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", help="task id: a release folder under --public")
    _paths(p, "public")
    p.add_argument("--out", type=Path, default=None, help="default: data/embeddings")
    p.add_argument(
        "--weights", type=Path, default=None, help="default: data/embeddings/weights.json (written by resolve-weights)"
    )
    p.add_argument("--no-cache", action="store_true", help="neither read nor fill the embedding cache")
    p.add_argument("--metrics", type=Path, default=EMBED_METRICS_ROOT, help="where this run's cache use and speed go")


@command(
    "embed", "CLIP embeddings of one task's image columns and joined text into data/embeddings/<task>/", _embed_args
)
def cmd_embed(a: argparse.Namespace) -> int:
    from tasks.core.schema import EMBEDDINGS_ROOT, WEIGHTS_IDENTITY
    from tasks.embed.clip import check_matches_params, read_identity
    from tasks.embed.stage import embed_task

    params = load_params(a.params)
    weights_path = a.weights or WEIGHTS_IDENTITY
    identity = read_identity(weights_path)
    check_matches_params(identity, params.embed.clip, weights_path)
    cache = None if a.no_cache or not params.embed.cache.enabled else Path(params.embed.cache.dir)
    report = embed_task(
        a.task,
        a.public,
        a.out or EMBEDDINGS_ROOT,
        params.embed,
        identity,
        cache_root=cache,
        memo_dir=Path(params.embed.cache.dir),
    )
    write_json(a.metrics / f"{a.task}.json", report.run_metrics(cache_enabled=cache is not None))
    print(f"embedded {report.summary()}")
    return 0


# --- orchestration (Prefect; imported here, at the edge, never in stage code) --------------


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("targets", nargs="*", help="stages to bring up to date (default: all)")


@command(
    "run", "run the pipeline through the Prefect flow (DVC reruns what is stale) and show the leaderboard", _run_args
)
def cmd_run(a: argparse.Namespace) -> int:
    from flows.pipeline import LEADERBOARD_HTML, challenge_pipeline

    state = challenge_pipeline(repo=".", targets=a.targets or None, params_file=str(a.params), return_state=True)
    if state.is_failed():
        print(f"error: the pipeline failed: {state.message}", file=sys.stderr)
        return 1
    summary = state.result()
    print(f"stages run: {len(summary['ran'])}, up to date: {len(summary['up_to_date'])}, in {summary['duration_s']} s")
    _show_leaderboard(load_params(a.params))
    if Path(LEADERBOARD_HTML).is_file():
        print(f"leaderboard page: {Path(LEADERBOARD_HTML).resolve()}")
    return 0


def _show_leaderboard(params) -> None:
    from tasks.board.render import build_view, render_terminal
    from tasks.board.snapshots import current_result

    result = current_result(RESULTS_ROOT, LEADERBOARD_ROOT, params.challenge.closed, params.challenge.name)
    if result is not None:
        render_terminal(build_view(result))


@command(
    "nightly",
    "run the nightly re-evaluation flow once, now: intake, evaluation, leaderboard, commit/push per nightly.* "
    "(the portal's re-evaluate button runs this when no Prefect server is configured)",
)
def cmd_nightly(a: argparse.Namespace) -> int:
    from flows.nightly import nightly_reevaluation

    state = nightly_reevaluation(repo=".", params_file=str(a.params), return_state=True)
    if state.is_failed():
        print(f"error: the nightly re-evaluation failed: {state.message}", file=sys.stderr)
        return 1
    outcome = state.result()
    print(f"nightly re-evaluation done: new snapshot {outcome.get('new_snapshot') or 'none (nothing changed)'}")
    return 0


@command("serve", "serve the on-demand and nightly deployments from this machine (Ctrl-C stops)")
def cmd_serve(a: argparse.Namespace) -> int:
    from flows.deployments import serve_all

    serve_all(Path("."), load_params(a.params))
    return 0


def _prefect_yaml_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--check", action="store_true", help="fail if prefect.yaml differs from what params.yaml gives")
    p.add_argument("--out", type=Path, default=Path("prefect.yaml"))


@command("prefect-yaml", "write prefect.yaml (work-pool deployments) from params.yaml", _prefect_yaml_args)
def cmd_prefect_yaml(a: argparse.Namespace) -> int:
    from flows.deployments import prefect_yaml

    text = prefect_yaml(load_params(a.params))
    if a.check:
        same = a.out.is_file() and a.out.read_text(encoding="utf-8") == text
        print(f"{a.out} is {'in sync with' if same else 'OUT OF SYNC with'} {a.params}")
        return 0 if same else 1
    a.out.write_text(text, encoding="utf-8")
    print(f"wrote {a.out}")
    return 0


# --- the web portal -------------------------------------------------------------------------


def _portal_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="default: portal.host")
    p.add_argument("--port", type=int, help="default: portal.port")


@command(
    "portal",
    "serve the web portal (sign-in, uploads, history, board, admin pages, JSON API) with uvicorn",
    _portal_args,
)
def cmd_portal(a: argparse.Namespace) -> int:
    import uvicorn

    from flows.trigger import configured_deployments
    from tasks.portal.app import create_app

    params = load_params(a.params)
    host, port = a.host or params.portal.host, a.port or params.portal.port
    app = create_app(params, Path.cwd(), params_path=a.params, deployments=configured_deployments())
    print(f"portal on http://{host}:{port}/ (API documentation: /api/docs); Ctrl-C stops")
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=params.portal.trust_forwarded)
    return 0


def _team_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["add", "rotate", "disable", "enable", "list", "organiser"])
    p.add_argument("name", nargs="?", help="the team (a slug); not for list and organiser")
    p.add_argument("--display-name", default="", help="add: the name shown on the board (default: the slug)")
    p.add_argument("--member", action="append", default=[], help="add: a member's e-mail (repeat for several)")


@command(
    "team",
    "portal teams: add NAME (prints its token once), rotate NAME, disable NAME, enable NAME, list; organiser (the admin token)",
    _team_args,
)
def cmd_team(a: argparse.Namespace) -> int:
    from tasks.portal.teams import ORGANISER, TeamStore

    params = load_params(a.params)
    store = TeamStore(Path(params.portal.data_dir))
    if a.action == "list":
        for name, t in store.teams().items():
            state = "disabled" if t.get("disabled") else "enabled"
            print(f"{name}\t{t['display_name']}\t{state}\t{', '.join(t.get('members', []))}")
        return 0
    if a.action == "organiser":
        token = store.rotate(ORGANISER)
        print(f"organiser token (shown once; any earlier one stops working):\n{token}")
        return 0
    if not a.name:
        raise InputError(problem=f"`mmtc team {a.action}` needs a team name", fix=f"mmtc team {a.action} NAME")
    if a.action == "add":
        token = store.add(a.name, a.display_name, a.member)
        print(f"team {a.name} added. Its token, shown once (stored only as a salted hash):\n{token}")
    elif a.action == "rotate":
        token = store.rotate(a.name)
        print(f"new token of {a.name} (the old one and its sessions stop working):\n{token}")
    else:
        store.set_disabled(a.name, a.action == "disable")
        print(f"team {a.name} {a.action}d")
    return 0


def _moderate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("submission", nargs="?", help="<team>/<submission_id> (omit with --list)")
    p.add_argument("--action", choices=["disqualify", "withdraw", "reinstate"])
    p.add_argument("--reason", default="", help="one line, shown to the team")
    p.add_argument("--list", action="store_true", help="print every decision, oldest first")
    _paths(p, "submissions")


@command(
    "moderate",
    "disqualify, withdraw or reinstate a stored submission (appended to submissions/_moderation.jsonl; the board follows at the next evaluation)",
    _moderate_args,
)
def cmd_moderate(a: argparse.Namespace) -> int:
    from tasks.core.moderation import decide, read_decisions

    if a.list:
        for d in read_decisions(a.submissions):
            print(f"{d.at}\t{d.by}\t{d.action}\t{d.submission}\t{d.reason}")
        return 0
    if not a.submission or not a.action:
        raise InputError(
            problem="give a submission and an action", fix="mmtc moderate TEAM/ID --action disqualify --reason '...'"
        )
    d = decide(a.submissions, a.submission, a.action, by="organiser (cli)", reason=a.reason)
    print(f"{d.submission}: {d.action} recorded at {d.at}; the board follows at the next evaluation")
    return 0


def _upload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", type=Path, help="task files (<task>.csv or .parquet), or one zip of them")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the portal's address")
    p.add_argument("--token-file", type=Path, help="a file holding the team token (default: $MMTC_TOKEN)")
    p.add_argument("--name", help="submission name, a slug (default: from the file name)")
    p.add_argument("--description", default="", help="one line of plain text")


@command("upload", "send a submission to the portal's JSON API with your team token; prints the verdict", _upload_args)
def cmd_upload(a: argparse.Namespace) -> int:
    import os

    from tasks.portal.client import upload

    token = a.token_file.read_text(encoding="utf-8").strip() if a.token_file else os.environ.get("MMTC_TOKEN", "")
    if not token:
        raise InputError(problem="no team token", fix="set MMTC_TOKEN or pass --token-file PATH")
    ok, text = upload(a.url, token, a.files, name=a.name, description=a.description)
    print(text, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 2


# --- entry point --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmtc", description="MultiModal Tabular Challenge pipeline")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (fn, arguments, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        arguments(p)
        p.set_defaults(func=fn)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (InputError, InputErrors) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
