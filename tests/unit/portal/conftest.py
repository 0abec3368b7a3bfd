"""A small project for the portal: the corpus release (two tasks), params, teams and a client."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tasks.core.params import load_params
from tasks.core.schema import SAMPLE_SUBMISSION
from tasks.portal.teams import ORGANISER, TeamStore
from tests.conftest import ROOT
from tests.scoring_support import RELEASE, TASKS, perfect, write_predictions


def make_project(root: Path, **portal) -> Path:
    """A project folder: the release under data/, params.yaml naming its two tasks."""
    shutil.copytree(RELEASE / "public", root / "data" / "public")
    shutil.copytree(RELEASE / "private", root / "data" / "private")
    for task in TASKS:  # the corpus release is hand-made: give it what ingest writes beside the tables
        key, label = ("id", "mug") if task == "shop_kind" else ("pair_id", "0")
        ids = pq.read_table(
            root / "data" / "public" / task / ("test.parquet" if key == "id" else "test_pairs.parquet")
        ).column(key)
        lines = [f"{key},label"] + [f"{i},{label}" for i in ids.to_pylist()]
        (root / "data" / "public" / task / SAMPLE_SUBMISSION).write_text("\n".join(lines) + "\n")
    data = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    data["challenge"]["tasks"] = list(TASKS)
    data["portal"] = data.get("portal", {}) | portal
    (root / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return root


def good_files(folder: Path, flip: int = 1) -> list[Path]:
    private = RELEASE / "private"
    return [
        write_predictions(folder, "shop_kind", perfect(private, "shop_kind", flip=flip)),
        write_predictions(folder, "same_item", perfect(private, "same_item", flip=flip)),
    ]


@pytest.fixture
def project(tmp_path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture
def tokens(project) -> dict[str, str]:
    store = TeamStore(project / ".portal")
    return {
        "alpha": store.add("alpha", "Team <Alpha>", ["a@example.org"]),
        "beta": store.add("beta", "Beta"),
        ORGANISER: store.rotate(ORGANISER),
    }


@pytest.fixture
def client(project, tokens):
    from fastapi.testclient import TestClient

    from tasks.portal.app import create_app

    app = create_app(load_params(project / "params.yaml"), project, params_path=project / "params.yaml")
    with TestClient(app, base_url="http://testserver") as c:
        yield c


def csrf_of(html: str) -> str:
    import re

    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field on the page"
    return m.group(1)


def sign_in(client, token: str):
    page = client.get("/signin")
    return client.post("/signin", data={"token": token, "csrf": csrf_of(page.text)}, follow_redirects=False)
