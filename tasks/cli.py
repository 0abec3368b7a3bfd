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


# --- submissions, evaluation, leaderboard ---------------------------------------------------


def _submit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", type=Path, help="a folder with one file per task (<task>.csv or <task>.parquet), or one such file")
    p.add_argument("--team", required=True, help="team name: a slug (lower-case letters, digits, hyphens)")
    p.add_argument("--name", help="submission name, a slug (default: from the path)")
    p.add_argument("--description", default="", help="one line of plain text shown with the submission")
    p.add_argument("--submissions", type=Path, default=Path("submissions"))
    p.add_argument("--public", type=Path, default=Path("data/public"))


@command("submit", "check a team's predictions against the public release and record them (accepted or rejected)", _submit_args)
def cmd_submit(a: argparse.Namespace) -> int:
    from tasks.config import section
    from tasks.submit import load_contracts, submit

    params = load_params(a.params)
    result = submit(
        a.path,
        a.team,
        submissions_root=a.submissions,
        contracts=load_contracts(a.public, params.challenge.tasks),
        params=section(params, "submit"),
        name=a.name,
        description=a.description,
    )
    print(result.summary(), file=sys.stdout if result.accepted else sys.stderr)
    return 0 if result.accepted else 2


def _evaluate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--submissions", type=Path, default=Path("submissions"))
    p.add_argument("--public", type=Path, default=Path("data/public"))
    p.add_argument("--private", type=Path, default=Path("data/private"))
    p.add_argument("--results", type=Path, default=Path("results"))


@command("evaluate", "score every stored submission against the hidden labels (DuckDB; cached by content)", _evaluate_args)
def cmd_evaluate(a: argparse.Namespace) -> int:
    from tasks.config import section
    from tasks.evaluate import evaluate

    params = load_params(a.params)
    report = evaluate(a.submissions, a.public, a.private, params.challenge.tasks, a.results, section(params, "evaluate"))
    print(f"evaluate: {report.summary()}")
    for item in report.invalid:
        print(f"  not scored: {item['submission']}: {item['problem']}")
    return 0


def _leaderboard_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--out", type=Path, default=Path("leaderboard"))
    p.add_argument("--quiet", action="store_true", help="do not print the board")


@command("leaderboard", "rank teams per track, snapshot the board when it changed, write leaderboard/latest.*", _leaderboard_args)
def cmd_leaderboard(a: argparse.Namespace) -> int:
    from tasks.config import section
    from tasks.leaderboard import code_identity, snapshot_time, update_leaderboard, weights_identity
    from tasks.report import build_view, render_terminal

    params = load_params(a.params)
    board_params = section(params, "leaderboard")
    result = update_leaderboard(
        a.results,
        a.out,
        board_params,
        challenge_name=params.challenge.name,
        closed=params.challenge.closed,
        now=snapshot_time(),
        code=code_identity(Path.cwd()),
        weights=weights_identity(Path.cwd()),
        params_used={"challenge": params.challenge.model_dump(), "leaderboard": board_params.model_dump()},
    )
    if not a.quiet:
        render_terminal(build_view(result))
    print(result.summary())
    print("written: " + ", ".join(str(p) for p in result.files))
    return 0


def _demo_teams_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--public", type=Path, default=Path("data/public"))
    p.add_argument("--submissions", type=Path, default=Path("submissions"))


@command("demo-teams", "(demo) replace the demo teams' submissions: seeded predictions from the public release, submitted like `mmtc submit`", _demo_teams_args)
def cmd_demo_teams(a: argparse.Namespace) -> int:
    from tasks.config import section
    from tasks.demo_teams import generate_demo_teams
    from tasks.submit import load_contracts

    params = load_params(a.params)
    results = generate_demo_teams(
        a.public,
        a.submissions,
        load_contracts(a.public, params.challenge.tasks),
        section(params, "submit"),
        section(params, "demo_teams"),
        params.challenge.opens_at,
    )
    for r in results:
        print(r.summary().splitlines()[0])
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
