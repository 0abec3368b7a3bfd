"""What the portal takes in is versioned like the intake's: `dvc add` of the folders it wrote to,
and a git commit of their pointers with nightly.commit (a real git + DVC repository)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.unit.portal.conftest import good_files

pytestmark = pytest.mark.slow


def run(cmd, cwd):
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)


def test_uploads_and_selections_are_versioned_with_dvc_and_committed(project, tokens, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from tasks.core.params import load_params
    from tasks.portal.app import create_app

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    data = yaml.safe_load((project / "params.yaml").read_text())
    data["nightly"] |= {"version": True, "commit": True, "push": False}
    (project / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (project / ".gitignore").write_text("/.portal/\n/data/\n")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"]):
        run(cmd, project)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "start"], project)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "t")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "t@example.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "t")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "t@example.invalid")
    app = create_app(load_params(project / "params.yaml"), project, params_path=project / "params.yaml")
    portal = app.state.portal
    portal.versioner.delay_s = 0.2
    files = [("file", (p.name, io.BytesIO(p.read_bytes()))) for p in good_files(tmp_path / "f")]
    with TestClient(app) as c:
        auth = {"Authorization": f"Bearer {tokens['alpha']}"}
        sid = c.post("/api/v1/submissions", headers=auth, files=files).json()["submission_id"]
        c.post("/api/v1/submissions", headers=auth, files=[("file", ("shop_kind.csv", io.BytesIO(b"bad")))])
        c.post("/api/v1/finals", headers=auth, json={"submission_ids": [sid]})
        portal.versioner.flush(180)
    assert portal.versioner.last["state"] == "ok", portal.versioner.last
    for pointer in ("submissions/alpha.dvc", "submissions/_rejected/alpha.dvc", "submissions/_final/alpha.dvc"):
        assert (project / pointer).is_file(), pointer
    tracked = subprocess.run(["git", "ls-files"], cwd=project, capture_output=True, text=True).stdout
    assert "submissions/alpha.dvc" in tracked and "submissions/_final/alpha.dvc" in tracked
    assert (
        "Portal "
        in subprocess.run(["git", "log", "-1", "--format=%s"], cwd=project, capture_output=True, text=True).stdout
    )
