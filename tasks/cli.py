"""`mmtc`: one subcommand per stage, each a thin call into tasks/.

Params are read here, once, and each stage gets only its own section. Bad input is caught
here too, printed with its fix, and turned into exit status 2.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

from tasks.config import load_manifest, load_params
from tasks.errors import InputError, InputErrors

COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], Callable[[argparse.ArgumentParser], None], str]] = {}


def command(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None):
    """Register a subcommand: its function, how it takes its arguments, one line of help."""

    def register(fn):
        COMMANDS[name] = (fn, arguments, help)
        return fn

    return register


# --- demo ---------------------------------------------------------------------------------


@command("demo", "write the raw contribution of one bundled demo task (the first DVC stage)", lambda p: (p.add_argument("task"), p.add_argument("--out", type=Path, help="default: contributions/<task>")))
def cmd_demo(a: argparse.Namespace) -> int:
    from tasks.demo import generate_contribution

    params = load_params(a.params)
    out = a.out or Path("contributions") / a.task
    generate_contribution(a.task, out, params.demo.seed, params.demo.tasks.get(a.task, {}))
    print(f"demo contribution written to {out}")
    return 0


# --- ingest -------------------------------------------------------------------------------


def _ingest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", help="task id: the folder name under --contributions")
    p.add_argument("--contributions", type=Path, default=Path("contributions"))
    p.add_argument("--public", type=Path, default=Path("data/public"))
    p.add_argument("--private", type=Path, default=Path("data/private"))


@command("ingest", "validate, standardise and split one task into data/public and data/private", _ingest_args)
def cmd_ingest(a: argparse.Namespace) -> int:
    from tasks.ingest import ingest_task

    params = load_params(a.params)
    report = ingest_task(a.contributions / a.task, a.public, a.private, params.ingest)
    print(f"ingested {report.summary()}")
    for note in report.notes:
        print(f"  note: {note}")
    return 0


@command("validate-task", "check a contribution against its manifest without writing anything", lambda p: p.add_argument("path", type=Path))
def cmd_validate_task(a: argparse.Namespace) -> int:
    from tasks.ingest import validate_task

    manifest = validate_task(a.path, load_params(a.params).ingest)
    print(f"{manifest.id}: the contribution is valid ({manifest.type.value}, track {manifest.track})")
    return 0


def _add_task_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, help="folder holding task.yaml and the raw files")
    p.add_argument("--replace", action="store_true", help="replace an already added task of the same id")
    p.add_argument("--contributions", type=Path, default=Path("contributions"))
    p.add_argument("--no-dvc", action="store_true", help="copy and register only; do not run `dvc add`")


@command("add-task", "validate a new contribution, copy it to contributions/, track it with DVC and register it", _add_task_args)
def cmd_add_task(a: argparse.Namespace) -> int:
    from tasks.ingest import validate_task
    from tasks.registry import register_task

    params = load_params(a.params)
    manifest = validate_task(a.path, params.ingest)
    if manifest.id in params.demo.tasks:
        raise InputError(problem=f"'{manifest.id}' is a demo task written by the demo stage", fix="give the contribution another id", task=manifest.id, file="task.yaml")
    dest = a.contributions / manifest.id
    if a.path.resolve() != dest.resolve():
        if dest.exists() and not a.replace:
            raise InputError(problem=f"{dest} exists already", fix="pass --replace to publish a new version of the task", task=manifest.id)
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(a.path, dest)
    if not a.no_dvc:
        subprocess.run(["dvc", "add", str(dest)], check=True)
    added = register_task(a.params, manifest.id)
    print(f"{manifest.id}: added{' and registered in ' + str(a.params) if added else ''}.")
    print(f"next: git add {dest}.dvc {a.contributions}/.gitignore {a.params} && git commit; dvc push; dvc repro")
    return 0


# --- train --------------------------------------------------------------------------------


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("task")
    p.add_argument("--public", type=Path, default=Path("data/public"))
    p.add_argument("--embeddings", type=Path, default=Path("data/embeddings"))
    p.add_argument("--models", type=Path, default=Path("data/models"))
    p.add_argument("--metrics", type=Path, default=Path("metrics/train"))
    p.add_argument("--submissions", type=Path, default=Path("submissions"))


@command("train", "tune CatBoost on one task and write its model, metrics and baseline submissions", _train_args)
def cmd_train(a: argparse.Namespace) -> int:
    from tasks.train import train_task

    params = load_params(a.params)
    report = train_task(a.task, a.public, a.embeddings, a.models, a.metrics, a.submissions, params.train, params.challenge.opens_at)
    print(report.summary())
    return 0


def _tune_worker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("task")
    p.add_argument("--storage", help="Optuna storage shared by the workers: an RDB URL or journal:<path> (default: train.storage)")
    p.add_argument("--worker", type=int, default=1, help="worker number; TPE samples with train.seed + worker (the train stage is worker 0)")
    p.add_argument("--n-trials", type=int, help="stop when the study holds this many finished trials (default: train.n_trials)")
    p.add_argument("--timeout", type=float, help="seconds (default: train.timeout_s)")
    p.add_argument("--public", type=Path, default=Path("data/public"))
    p.add_argument("--embeddings", type=Path, default=Path("data/embeddings"))


@command("tune-worker", "join the Optuna study of one task in a shared storage and run trials", _tune_worker_args)
def cmd_tune_worker(a: argparse.Namespace) -> int:
    from tasks.train import prepare
    from tasks.tune import open_study, run_trials

    params = load_params(a.params).train
    storage = a.storage or params.storage
    if not storage:
        raise InputError(problem="a tune worker needs a shared study storage", fix="pass --storage journal:<path> or an RDB URL, or set train.storage in params.yaml")
    release, problem = prepare(a.task, a.public, a.embeddings, params)
    study = open_study(problem, params, worker=a.worker, storage=storage)
    n_trials = a.n_trials or params.n_trials
    stopped_by = run_trials(study, problem, params, release.primary_metric, n_trials=n_trials, timeout_s=a.timeout if a.timeout is not None else params.timeout_s, worker=a.worker)
    mine = [t for t in study.trials if t.user_attrs.get("worker") == a.worker]
    print(f"{a.task}: worker {a.worker} ran {len(mine)} trial(s) in study {study.study_name}; the study holds {len(study.trials)} (stopped by {stopped_by})")
    return 0


# --- the whole pipeline ------------------------------------------------------------------


@command("run", "run the whole pipeline (every DVC stage that is stale) and say where the results are")
def cmd_run(a: argparse.Namespace) -> int:
    result = subprocess.run(["dvc", "repro", "--keep-going"])
    print("release: data/public/   hidden labels: data/private/")
    return result.returncode


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
