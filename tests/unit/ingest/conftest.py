"""Fixtures of the ingest tests: small versions of the demo contributions, generated once."""

from __future__ import annotations

import pytest

from tasks.demo.generators import generate_contribution

SMALL = {
    "product_dedup": {"n_lines": 10, "image_size": 32},
    "product_variants": {"n_blocks": 12, "image_size": 32},
    "person_link": {"n_left": 60},
    "fastfood_chain": {},
    "product_type": {"n_items": 60, "image_size": 32},
}


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("contributions")
    for task, options in SMALL.items():
        generate_contribution(task, root / task, seed=3, options=options)
    return root
