"""The scheduled re-evaluation: take in the uploads waiting in the inbox, rerun evaluation and
the leaderboard (DVC reruns them only if submissions, labels, scorer or params changed),
publish what changed, and optionally record the result in git and the DVC remote.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.dvc_stages import tool_env
from flows.pipeline import challenge_pipeline
from tasks.core.params import NightlyParams, load_params
from tasks.core.schema import LEADERBOARD_ROOT

SNAPSHOTS = LEADERBOARD_ROOT / "snapshots"


@task(name="take-in-submissions", cache_policy=NO_CACHE, persist_result=False)
def take_in_submissions(repo: str, inbox: str) -> dict:
    """Submit every upload waiting as <inbox>/<team>/<upload> through `mmtc submit`.

    Accepted and rejected uploads are both recorded by `mmtc submit` and leave the inbox; an
    upload that crashes the submit command stays for the next night and is reported.
    """
    logger = get_run_logger()
    root = Path(repo)
    folder = root / inbox
    accepted: list[str] = []
    rejected: list[str] = []
    kept: list[str] = []
    for team_dir in sorted(p for p in folder.glob("*") if p.is_dir()) if folder.is_dir() else []:
        for upload in sorted(team_dir.iterdir()):
            cmd = ["mmtc", "submit", "--team", team_dir.name, "--name", upload.stem, str(upload)]
            result = subprocess.run(cmd, cwd=root, env=tool_env(), capture_output=True, text=True)
            logger.info(
                "%s/%s: exit %s %s%s",
                team_dir.name,
                upload.name,
                result.returncode,
                result.stdout.strip(),
                result.stderr.strip(),
            )
            if result.returncode in (0, 2):
                (accepted if result.returncode == 0 else rejected).append(f"{team_dir.name}/{upload.name}")
                shutil.rmtree(upload) if upload.is_dir() else upload.unlink()
            else:
                kept.append(f"{team_dir.name}/{upload.name}")
    return {"accepted": accepted, "rejected": rejected, "kept_for_retry": kept}


def newest_snapshot(repo: Path) -> Path | None:
    snapshots = sorted((repo / SNAPSHOTS).glob("*.parquet"))
    return snapshots[-1] if snapshots else None


@task(name="record-in-git", cache_policy=NO_CACHE, persist_result=False)
def record(repo: str, settings: NightlyParams, message: str) -> str:
    """Commit dvc.lock (which pins every output, the snapshots included) and push the data."""
    root = Path(repo)
    env = tool_env()
    subprocess.run(["git", "add", "dvc.lock", str(SNAPSHOTS)], cwd=root, env=env, check=True)
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
    intake = take_in_submissions(str(root), settings.inbox)
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
    if settings.commit and created:
        outcome["recorded"] = record(str(root), settings, f"Nightly re-evaluation: snapshot {created.stem}")
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
