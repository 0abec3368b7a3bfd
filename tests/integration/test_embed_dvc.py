"""resolve_weights and embed under real DVC on a copy of the repository (small demo, tiny CLIP):
every task embedded, a rerun embeds nothing, and ten new rows in one contribution are the only
items embedded again."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import yaml

from tests.integration.conftest import ALWAYS_RUN, run, stages_run
from tests.unit.embed.helpers import png

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def tasks_of(repo):
    return yaml.safe_load((repo / "params.yaml").read_text())["challenge"]["tasks"]


def write_contribution(folder, n: int) -> None:
    """A classification contribution with n distinct items, each with its own photo and title."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    lines = ["Item ID,Name,Colour,Photo,Kind"]
    for i in range(n):
        (folder / "img" / f"p{i}.png").write_bytes(png(i))
        lines.append(
            f"S{i:03d},item number {i} in {['red', 'blue', 'green'][i % 3]},{['red', 'blue', 'green'][i % 3]},img/p{i}.png,{['mug', 'vase'][i % 2]}"
        )
    (folder / "items.csv").write_text("\n".join(lines) + "\n")
    (folder / "task.yaml").write_text(
        "id: shop_items\ntype: classification\ntrack: classification\nprimary_metric: macro_f1\ntitle: Shop items\n"
        "files:\n  data:\n    path: items.csv\n    columns:\n      Item ID: id\n      Name: {role: text, name: title}\n"
        "      Colour: categorical\n      Photo: {role: image, name: photo}\n      Kind: label\n"
        "text_template: '{title}'\n"
    )


@pytest.fixture(scope="module")
def built(built_repo):
    return built_repo


def test_every_task_is_embedded(built):
    repo, output = built
    assert "resolve_weights" in stages_run(output)
    weights = json.loads((repo / "data" / "embeddings" / "weights.json").read_text())
    assert weights["model"] == "mmtc-tiny-test" and weights["kind"] == "random-init"
    for task in tasks_of(repo):
        assert f"embed@{task}" in stages_run(output)
        folder = repo / "data" / "embeddings" / task
        meta = json.loads((folder / "meta.json").read_text())
        card = json.loads((repo / "data" / "public" / task / "card.json").read_text())
        images = [name for name, role in card["features"].items() if role == "image"]
        text_columns = yaml.safe_load((repo / "params.yaml").read_text())["embed"]["text"].get(task, {}).get("columns")
        has_text = any(role == "text" for role in card["features"].values()) and text_columns != []
        assert set(meta["files"]) == {f"{name}.parquet" for name in images} | ({"text.parquet"} if has_text else set())
        assert meta["weights"]["sha256"] == weights["sha256"]
        rows = sum(t["rows"] for name, t in card["tables"].items() if not name.endswith("pairs"))
        for name in meta["files"]:
            assert pq.read_metadata(folder / name).num_rows == rows


def test_second_run_embeds_nothing(built):
    repo, _ = built
    again = run(["dvc", "repro"], repo)
    assert stages_run(again.stdout) <= ALWAYS_RUN
    assert not any(s.startswith("embed@") for s in stages_run(again.stdout))


def test_ten_new_rows_are_the_only_items_embedded(built, tmp_path):
    repo, _ = built
    contribution = tmp_path / "shop_items"
    write_contribution(contribution, 20)
    run(["mmtc", "add-task", str(contribution)], repo)
    # every embed stage (and what it needs), not the retraining that the new budget shares cause
    ran = stages_run(run(["dvc", "repro", "--glob", "embed@*"], repo).stdout)
    assert {s for s in ran if s.startswith("embed@")} == {"embed@shop_items"}
    stats = json.loads((repo / "metrics" / "embed" / "shop_items.json").read_text())
    assert stats["cache"]["misses"] == 40 and stats["cache"]["hits"] == 0

    write_contribution(contribution, 30)  # the same 20 items and 10 new ones
    run(["mmtc", "add-task", str(contribution), "--replace"], repo)
    ran = stages_run(run(["dvc", "repro", "--glob", "embed@*"], repo).stdout)
    assert {s for s in ran if s.startswith("embed@")} == {"embed@shop_items"}
    stats = json.loads((repo / "metrics" / "embed" / "shop_items.json").read_text())
    for name in ("photo.parquet", "text.parquet"):
        assert (
            stats["files"][name]["rows"],
            stats["files"][name]["cache_hits"],
            stats["files"][name]["cache_misses"],
        ) == (30, 20, 10)
