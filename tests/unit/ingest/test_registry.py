"""Registering a task edits params.yaml without losing the organisers' comments."""

from __future__ import annotations

import yaml

from tasks.ingest.registry import register_task
from tests.conftest import ROOT


def test_register_appends_once_and_keeps_comments(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    assert register_task(path, "new_task") is True
    assert register_task(path, "new_task") is False
    text = path.read_text()
    assert "# Every knob of the pipeline." in text and "# what ingest publishes" in text
    tasks = yaml.safe_load(text)["challenge"]["tasks"]
    assert tasks[-1] == "new_task" and tasks.count("new_task") == 1
