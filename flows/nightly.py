"""The scheduled re-evaluation: take in the uploads waiting in the inbox, rerun evaluation and
the leaderboard (DVC reruns them only if submissions, labels, scorer or params changed),
publish what changed, and optionally record the result in git and the DVC remote.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.dvc_stages import tool_env
from flows.pipeline import challenge_pipeline
from tasks.core.params import NightlyParams, load_params
from tasks.core.schema import LEADERBOARD_ROOT, SUBMISSIONS_ROOT

SNAPSHOTS = LEADERBOARD_ROOT / "snapshots"


@task(name="take-in-submissions", cache_policy=NO_CACHE, persist_result=False)
def take_in_submissions(repo: str, params_file: str) -> dict:
    """`mmtc intake`: every upload of the inbox recorded (accepted or rejected) before it leaves,
    and the folders it wrote versioned with DVC (tasks/submissions/intake.py has the rules)."""
    logger = get_run_logger()
    root = Path(repo)
    with tempfile.TemporaryDirectory(prefix="mmtc-intake-") as tmp:
        report = Path(tmp) / "intake.json"
        cmd = ["mmtc", "--params", params_file, "intake", "--report", str(report)]
        result = subprocess.run(cmd, cwd=root, env=tool_env(), capture_output=True, text=True)
        logger.info("%s%s", result.stdout.strip(), ("\n" + result.stderr.strip()) if result.stderr.strip() else "")
        if result.returncode != 0:
            raise RuntimeError(f"mmtc intake failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")
        return json.loads(report.read_text(encoding="utf-8"))


def newest_snapshot(repo: Path) -> Path | None:
    snapshots = sorted((repo / SNAPSHOTS).glob("*.parquet"))
    return snapshots[-1] if snapshots else None


@task(name="record-in-git", cache_policy=NO_CACHE, persist_result=False)
def record(repo: str, settings: NightlyParams, message: str) -> str:
    """Commit dvc.lock (which pins every output: the board, the snapshots, the baselines) and the
    submissions' pointers, then push the data. The snapshots themselves are DVC outputs (git
    ignores them): dvc.lock and `dvc push` carry them."""
    root = Path(repo)
    env = tool_env()
    folder = root / SUBMISSIONS_ROOT  # <team>.dvc, _rejected/<team>.dvc, _final/<team>.dvc and their .gitignore
    dvc_files = [p for pattern in ("*.dvc", "*/*.dvc") for p in folder.glob(pattern) if p.is_file()]
    ignores = {p.parent / ".gitignore" for p in dvc_files if (p.parent / ".gitignore").is_file()}
    pointers = sorted(str(p.relative_to(root)) for p in [*dvc_files, *ignores])
    subprocess.run(["git", "add", "--", "dvc.lock", *pointers], cwd=root, env=env, check=True)
    staged = subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=root, env=env)
    if staged.returncode == 0:
        return "nothing to commit"
    subprocess.run(["git", "commit", "-m", message], cwd=root, env=env, check=True, capture_output=True)
    if settings.push:
        subprocess.run(["dvc", "push"], cwd=root, env=env, check=True, capture_output=True)
    return "committed" + (" and pushed" if settings.push else "")


@flow(name="nightly-reevaluation", persist_result=False, log_prints=True)
def nightly_reevaluation(repo: str = ".", params_file: str = "params.yaml") -> dict:
    root = Path(repo).resolve()
    settings = load_params(root / params_file).nightly
    before = newest_snapshot(root)
    intake = take_in_submissions(str(root), params_file)
    summary = challenge_pipeline(repo=str(root), targets=["leaderboard"], params_file=params_file)
    after = newest_snapshot(root)
    new_snapshot = after is not None and after != before
    created = after if new_snapshot else None
    changes = _changes_markdown(root) if new_snapshot else "No new snapshot: nothing changed since the last one."
    create_markdown_artifact(
        markdown=changes, key="leaderboard-changes", description="What changed in this night's snapshot"
    )
    outcome = {
        "intake": intake,
        "pipeline": summary,
        "new_snapshot": str(created.relative_to(root)) if created else None,
    }
    if settings.commit:
        what = f"snapshot {created.stem}" if created else "no new snapshot"
        outcome["recorded"] = record(str(root), settings, f"Nightly re-evaluation: {what}")
    return outcome


def _changes_markdown(repo: Path) -> str:
    """The diff section of the board's Markdown: new entries, rank and score changes."""
    md = (
        (repo / LEADERBOARD_ROOT / "latest.md").read_text(encoding="utf-8")
        if (repo / LEADERBOARD_ROOT / "latest.md").is_file()
        else ""
    )
    marker = "## Changes"
    if marker in md:
        section = md[md.index(marker) :]
        nxt = section.find("\n## ", len(marker))
        return section if nxt < 0 else section[:nxt]
    return md or "The leaderboard has no Markdown yet."
