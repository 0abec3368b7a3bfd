"""The demo generators are deterministic, heterogeneous, and their output ingests."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from tasks.core.files import sha256_tree
from tasks.demo.generators import GENERATORS, generate_contribution
from tasks.ingest.stage import validate_task
from tests.conftest import ROOT

SMALL = {
    "car_class": {"max_rows": 120},
    "fastfood_chain": {},
    "product_type": {"n_items": 50, "image_size": 32},
    "person_link": {"n_left": 60},
    "product_dedup": {"n_lines": 10, "image_size": 32},
    "product_variants": {"n_blocks": 12, "image_size": 32},
}


def test_every_demo_task_is_registered_and_configured():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(params["demo"]["tasks"]) == set(GENERATORS)
    assert set(GENERATORS) <= set(params["challenge"]["tasks"])


@pytest.mark.parametrize("task", sorted(GENERATORS))
def test_generator_is_deterministic_and_valid(task, tmp_path, ingest_params):
    a = generate_contribution(task, tmp_path / "a" / task, seed=11, options=SMALL[task])
    b = generate_contribution(task, tmp_path / "b" / task, seed=11, options=SMALL[task])
    assert sha256_tree(a) == sha256_tree(b)
    c = generate_contribution(task, tmp_path / "c" / task, seed=12, options=SMALL[task])
    assert sha256_tree(a) != sha256_tree(c)
    assert validate_task(a, ingest_params).id == task


def test_contributions_are_heterogeneous(tmp_path):
    formats, encodings = set(), set()
    for task in GENERATORS:
        out = generate_contribution(task, tmp_path / task, seed=1, options=SMALL[task])
        manifest = yaml.safe_load((out / "task.yaml").read_text())
        for spec in manifest["files"].values():
            formats.add(spec["path"].rsplit(".", 1)[1])
            encodings.add(spec.get("encoding", "utf-8"))
    assert {"csv", "tsv", "jsonl", "parquet"} <= formats
    assert {"latin-1", "utf-8-sig", "utf-8"} <= encodings


def test_product_type_titles_often_hide_the_type(tmp_path):
    out = generate_contribution(
        "product_type", tmp_path / "product_type", seed=4, options={"n_items": 200, "image_size": 32}
    )
    listings = pd.read_csv(out / "home_goods_listings.csv", encoding="utf-8-sig")
    nouns = ["mug", "cup", "vase", "lamp", "bowl", "bottle", "carafe", "clock", "candle", "pot", "planter"]
    named = listings["Product Title"].str.lower().str.contains("|".join(nouns))
    assert 0.3 < named.mean() < 0.65


def test_unknown_demo_task_is_refused(tmp_path):
    from tasks.core.errors import InputError

    with pytest.raises(InputError, match="no demo generator"):
        generate_contribution("nope", tmp_path / "nope", seed=1)


def test_more_variant_blocks_than_brand_category_pairs_is_refused(tmp_path):
    """Blocks are distinct (brand, category) pairs: asking for more would never finish drawing them."""
    from tasks.demo.generators import product_variants

    most = len(product_variants.BRANDS) * len(product_variants.CATEGORIES)
    with pytest.raises(ValueError, match="n_blocks"):
        generate_contribution(
            "product_variants", tmp_path / "v", seed=1, options={"n_blocks": most + 1, "image_size": 32}
        )
