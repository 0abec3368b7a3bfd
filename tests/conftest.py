"""Shared fixtures: the project's own params, small valid contributions, paths."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tasks.core.params import IngestParams, load_params

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"


@pytest.fixture(scope="session")
def project_params():
    return load_params(ROOT / "params.yaml")


@pytest.fixture
def ingest_params(project_params) -> IngestParams:
    return project_params.ingest


@pytest.fixture
def good_classification(tmp_path) -> Path:
    """A small valid contribution: the broken corpus's template without its defect."""
    src = CORPUS / "broken" / "missing_image"
    dest = tmp_path / "contrib" / "good_items"
    shutil.copytree(src, dest)
    csv = (dest / "items.csv").read_text().replace("img/nope.png", "img/a3.png")
    (dest / "items.csv").write_text(csv)
    (dest / "task.yaml").write_text((dest / "task.yaml").read_text().replace("missing_image", "good_items"))
    (dest / "expect.json").unlink()
    return dest
