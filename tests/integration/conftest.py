"""End-to-end fixtures: a throw-away copy of this repository with a small demo, and real DVC."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

BIN = Path(sys.executable).parent
AUDIT = Path(__file__).with_name("deps_audit")  # a sitecustomize that records what each mmtc process used

# A demo small enough for a test, same code paths as the real one.
SMALL_DEMO = {
    "car_class": {"max_rows": 200},
    "fastfood_chain": {"test_fraction": 0.3},
    "product_type": {"n_items": 80, "image_size": 48},
    "person_link": {"n_left": 80},
    "product_dedup": {"n_lines": 14, "image_size": 48},
    "product_variants": {"n_blocks": 12, "image_size": 48},
}

# The embed stage in tests: a tiny CLIP config of the project, random weights (fast, offline).
TINY_CLIP = {"model": "mmtc-tiny-test", "pretrained": None}

# The train stage in tests: the same tuning loop, two short trials per task.
QUICK_TRAIN = {
    "n_trials": 2,
    "budget": {"challenge_s": 40, "task_floor_s": 4},
    "ensemble_size": 5,
    "cv_folds": 2,
    "max_iterations": 40,
    "early_stopping_rounds": 10,
    "default_iterations": 40,
    "pruning_warmup_iterations": 10,
    "tpe_startup_trials": 1,
}


def tool_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["HF_HUB_OFFLINE"] = "1"
    env.setdefault("GIT_AUTHOR_NAME", "test")
    env.setdefault("GIT_AUTHOR_EMAIL", "test@example.invalid")
    env.setdefault("GIT_COMMITTER_NAME", "test")
    env.setdefault("GIT_COMMITTER_EMAIL", "test@example.invalid")
    return env


def run(cmd: list[str], cwd: Path, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=tool_env() | (env or {}), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


# Stages that run every time (cheap checks: the CLIP weights in use, the challenge's phase);
# an unchanged output stops there.
ALWAYS_RUN = frozenset({"resolve_weights", "schedule"})


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def copy_repo(dest: Path) -> Path:
    """The working tree as git sees it (tracked and untracked-not-ignored files), committed afresh."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for rel in filter(None, listed.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for path in (dest / "dvc.lock",):
        path.unlink(missing_ok=True)
    run(["git", "init", "-q"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "test copy"], dest)
    return dest


def shrink_params(repo: Path, **overrides) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["demo"]["tasks"] = {k: dict(v) for k, v in SMALL_DEMO.items()}
    if "embed" in params:
        params["embed"]["clip"].update(TINY_CLIP)
    if "train" in params:
        params["train"].update(QUICK_TRAIN)
    for dotted, value in overrides.items():
        node = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def demo_repo(tmp_path_factory) -> Path:
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    shrink_params(repo)
    return repo


@dataclass(frozen=True)
class BuiltDemo:
    repo: Path  # the template: never changed after its build; modules work on copies
    first_output: str  # stdout of the `dvc repro` that built it from nothing
    audit: Path  # what each stage's process loaded and opened (deps_audit)


@pytest.fixture(scope="session")
def built_demo(tmp_path_factory) -> BuiltDemo:
    """The small demo built once from nothing by `dvc repro`, recorded by the deps audit.

    Building takes about two minutes on two cores, and four modules start from a built
    pipeline; they share this build, each on its own copy (`built_repo`)."""
    repo = copy_repo(tmp_path_factory.mktemp("built-demo"))
    shrink_params(repo)
    audit = tmp_path_factory.mktemp("deps-audit")
    first = run(["dvc", "repro"], repo, env={"PYTHONPATH": str(AUDIT), "MMTC_DEPS_AUDIT": str(audit)})
    return BuiltDemo(repo, first.stdout, audit)


@pytest.fixture(scope="module")
def built_repo(built_demo, tmp_path_factory) -> tuple[Path, str]:
    """This module's own copy of the built demo (its tests change it: git history, DVC cache
    and outputs included), with the output of the run that built it."""
    dest = tmp_path_factory.mktemp("built") / "repo"
    shutil.copytree(built_demo.repo, dest, symlinks=True)
    return dest, built_demo.first_output
