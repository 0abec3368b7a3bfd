"""product_variants: the same item up to colour and size?

A brand's apparel models come in several colours and sizes. A pair is a match when both
listings are the same model, whatever their colour and size; sibling models with nearly
the same name ("Court Classic" / "Court Classic Low") are not. Titles spell colour and
size in, which a model must learn to discount; the marketplace often shortens the model
name, and then the design printed on the product (shape and pattern on the photo) tells
siblings apart. Candidate pairs: listings of the same brand and category (blocking).
The brand shop exports Parquet; the marketplace a CSV; pairs are a CSV with true/false.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from tasks.demo.generators.common import noisy, pick, save_picture, task_rng, write_manifest, write_table
from tasks.demo.generators.images import COLOURS, PATTERNS, encode, product_picture

TASK_ID = "product_variants"
# category: (shape, noun, sizes, base price)
CATEGORIES = {
    "sneakers": ("sneaker", "Sneaker", ["38", "39", "40", "41", "42", "43", "44", "45", "46"], 90),
    "boots": ("boot", "Boot", ["38", "39", "40", "41", "42", "43", "44", "45"], 140),
    "tshirts": ("tshirt", "T-Shirt", ["XS", "S", "M", "L", "XL", "XXL"], 25),
    "hoodies": ("hoodie", "Hoodie", ["XS", "S", "M", "L", "XL", "XXL"], 60),
    "caps": ("cap", "Cap", ["S/M", "L/XL"], 22),
    "backpacks": ("backpack", "Backpack", ["18L", "24L", "30L"], 75),
}
BRANDS = ["Northpeak", "Urbanic", "Kestrel", "Velo", "Solace", "Tundra", "Mistral", "Ridgeway", "Lumen", "Corsa"]
MODEL_STEMS = [
    "Court Classic",
    "Trail Runner",
    "City Walk",
    "Summit",
    "Breeze",
    "Metro",
    "Harbor",
    "Canyon",
    "Drift",
    "Atlas",
    "Coast",
    "Ember",
]
SIBLING_SUFFIXES = ["Low", "High", "GTX", "Lite", "2", "Pro", "Knit", "Retro"]
COLOUR_WORDS_MARKETPLACE = {"grey": "gray", "navy": "dark blue", "beige": "sand", "black": "blk", "white": "wht"}


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_blocks: int = Field(
        40, ge=4, le=len(BRANDS) * len(CATEGORIES), description="brand x category blocks (each pair at most once)"
    )
    families_per_block: tuple[int, int] = (1, 2)
    siblings_per_family: tuple[int, int] = (1, 3)
    variants_per_model: tuple[int, int] = (3, 5)
    listed_share_shop: float = Field(0.6, gt=0, le=1)
    listed_share_market: float = Field(0.5, gt=0, le=1)
    drop_suffix_market: float = Field(0.45, ge=0, le=1, description="marketplace titles that lose the sibling suffix")
    typo_rate_market: float = Field(0.05, ge=0, le=1)
    max_pairs_per_left: int = Field(4, ge=1)
    image_size: int = Field(128, ge=32)


def _models(opts: Options, rng: np.random.Generator) -> list[dict]:
    blocks: set[tuple] = set()
    while len(blocks) < opts.n_blocks:
        blocks.add((pick(rng, BRANDS), pick(rng, list(CATEGORIES))))
    models = []
    for block_no, (brand, category) in enumerate(sorted(blocks)):
        shape, noun, sizes, base = CATEGORIES[category]
        stems = rng.choice(
            MODEL_STEMS,
            size=int(rng.integers(opts.families_per_block[0], opts.families_per_block[1] + 1)),
            replace=False,
        )
        designs = set()
        for stem in stems:
            n_sib = int(rng.integers(opts.siblings_per_family[0], opts.siblings_per_family[1] + 1))
            suffixes = [""] + list(rng.choice(SIBLING_SUFFIXES, size=n_sib - 1, replace=False))
            for suffix in suffixes:
                while True:
                    pattern = pick(rng, PATTERNS)
                    if pattern not in designs:
                        designs.add(pattern)
                        break
                name = f"{stem} {suffix}".strip()
                models.append(
                    {
                        "block": block_no,
                        "brand": brand,
                        "category": category,
                        "shape": shape,
                        "noun": noun,
                        "sizes": sizes,
                        "name": name,
                        "stem": stem,
                        "pattern": pattern,
                        "price": base * rng.uniform(0.8, 1.5),
                    }
                )
    return models


def generate(out: Path, seed: int, options: dict) -> None:
    opts = Options(**options)
    rng = task_rng(seed, TASK_ID)
    pics = task_rng(seed, TASK_ID, "pictures")
    shop: list[dict] = []
    market: list[dict] = []
    for model_no, m in enumerate(_models(opts, rng)):
        n_var = int(rng.integers(opts.variants_per_model[0], opts.variants_per_model[1] + 1))
        colours = rng.choice(list(COLOURS), size=n_var, replace=False)
        for colour in colours:
            size = pick(rng, m["sizes"])
            for source, share, rows in (
                ("shop", opts.listed_share_shop, shop),
                ("market", opts.listed_share_market, market),
            ):
                if rng.random() >= share:
                    continue
                listing_id = f"{'S' if source == 'shop' else 'M'}{int(rng.integers(10**7, 10**8))}"
                image_rel = f"{source}_images/{listing_id[-2:]}/{listing_id}.jpg"
                accent = "white" if colour != "white" else "black"
                picture = product_picture(
                    m["shape"], COLOURS[colour], m["pattern"], COLOURS[accent], pics, opts.image_size
                )
                save_picture(out, image_rel, encode(picture, "jpg", pics))
                price = m["price"] * rng.uniform(0.95, 1.05)
                if source == "shop":
                    rows.append(
                        {
                            "variant_sku": listing_id,
                            "product_name": f"{m['brand']} {m['name']} {m['noun']} - {colour.title()} - Size {size}",
                            "colour": colour,
                            "size": size,
                            "price": round(price, 2),
                            "category": m["category"],
                            "image_file": image_rel,
                            "_model": model_no,
                            "_block": m["block"],
                        }
                    )
                else:
                    name = m["stem"] if rng.random() < opts.drop_suffix_market else m["name"]
                    colour_word = COLOUR_WORDS_MARKETPLACE.get(colour, colour) if rng.random() < 0.5 else colour
                    title = f"{m['brand']} {name} {m['noun'].lower()} {colour_word} {size}"
                    rows.append(
                        {
                            "OfferID": listing_id,
                            "OfferTitle": noisy(title, rng, opts.typo_rate_market),
                            "Color": colour_word.upper(),
                            "Size": size,
                            "PriceUSD": round(price * 1.08, 2),
                            "Category": m["noun"].lower() + "s",
                            "Picture": image_rel,
                            "_model": model_no,
                            "_block": m["block"],
                        }
                    )
    shop_df, market_df = pd.DataFrame(shop), pd.DataFrame(market)
    candidates = shop_df[["variant_sku", "_model", "_block"]].merge(
        market_df[["OfferID", "_model", "_block"]], on="_block", suffixes=("_s", "_m")
    )
    candidates["same"] = candidates["_model_s"] == candidates["_model_m"]
    # each shop listing keeps a few candidates of its block, its true matches first in line
    candidates["draw"] = rng.random(len(candidates)) - candidates["same"] * 0.15
    candidates = candidates.sort_values(["variant_sku", "draw"]).groupby("variant_sku").head(opts.max_pairs_per_left)
    pairs = pd.DataFrame(
        {
            "shop_sku": candidates["variant_sku"],
            "offer_id": candidates["OfferID"],
            "is_same_model": np.where(candidates["same"], "true", "false"),
        }
    )
    pairs = pairs.sample(frac=1.0, random_state=int(rng.integers(2**31)))
    write_table(
        shop_df.drop(columns=["_model", "_block"]).sample(frac=1.0, random_state=5),
        out / "brand_shop_variants.parquet",
        "parquet",
    )
    write_table(
        market_df.drop(columns=["_model", "_block"]).sample(frac=1.0, random_state=6),
        out / "marketplace_offers.csv",
        "csv",
    )
    write_table(pairs, out / "pairs.csv", "csv")
    write_manifest(
        out,
        {
            "id": TASK_ID,
            "type": "matching",
            "track": "matching",
            "primary_metric": "f1",
            "title": "Same item up to colour and size",
            "description": "Decide whether a brand-shop variant and a marketplace offer are the same model, ignoring colour and size. Sibling models with near-identical names are different items; the product photo shows each model's design.",
            "source": {
                "name": "Generated by the mmtc demo generator (tasks/demo/generators/product_variants.py), deterministic from the seed in params.yaml",
                "license": "CC0-1.0",
                "notes": "candidate pairs by blocking on brand and category, at most a few per shop listing",
            },
            "files": {
                "left": {
                    "path": "brand_shop_variants.parquet",
                    "columns": {
                        "variant_sku": "id",
                        "product_name": {"role": "text", "name": "title"},
                        "colour": "categorical",
                        "size": "categorical",
                        "price": "numeric",
                        "category": "categorical",
                        "image_file": {"role": "image", "name": "image"},
                    },
                },
                "right": {
                    "path": "marketplace_offers.csv",
                    "columns": {
                        "OfferID": "id",
                        "OfferTitle": {"role": "text", "name": "title"},
                        "Color": {"role": "categorical", "name": "colour"},
                        "Size": {"role": "categorical", "name": "size"},
                        "PriceUSD": {"role": "numeric", "name": "price"},
                        "Category": "categorical",
                        "Picture": {"role": "image", "name": "image"},
                    },
                },
                "pairs": {
                    "path": "pairs.csv",
                    "columns": {"shop_sku": "left_id", "offer_id": "right_id", "is_same_model": "label"},
                },
            },
            "text_template": "{title}",
        },
    )
