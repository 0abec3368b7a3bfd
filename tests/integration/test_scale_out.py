"""Workers in separate clones share work through a DVC remote: what one clone built and
pushed, another clone pulls instead of rebuilding (orchestration.remote)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.integration.conftest import copy_repo, run, shrink_params, tool_env

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def flow(repo, targets):
    code = f"from flows.pipeline import challenge_pipeline; import json; print('SUMMARY', json.dumps(challenge_pipeline(repo='.', targets={targets!r})))"
    result = subprocess.run(["python", "-c", code], cwd=repo, env=tool_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    line = next(s for s in result.stdout.splitlines() if s.startswith("SUMMARY "))
    return yaml.safe_load(line.removeprefix("SUMMARY "))


def test_a_second_clone_pulls_instead_of_rebuilding(tmp_path):
    remote = tmp_path / "dvc-remote"
    first = copy_repo(tmp_path / "first")
    shrink_params(first, **{"orchestration.remote": "shared"})
    run(["dvc", "remote", "add", "shared", str(remote)], first)
    run(["git", "add", "-A"], first)
    run(["git", "commit", "-qm", "use a shared remote"], first)

    built = flow(first, ["ingest@product_type"])
    assert set(built["ran"]) == {"demo@product_type", "ingest@product_type"}
    assert any(remote.rglob("*")), "the first clone pushed nothing"
    run(["git", "add", "dvc.lock"], first)
    run(["git", "commit", "-qm", "record the outputs"], first)

    second = tmp_path / "second"
    run(["git", "clone", "-q", str(first), str(second)], tmp_path)
    pulled = flow(second, ["ingest@product_type"])
    assert pulled["ran"] == [], pulled  # inputs and outputs came from the remote
    assert (second / "data/public/product_type/card.json").read_bytes() == (
        first / "data/public/product_type/card.json"
    ).read_bytes()
