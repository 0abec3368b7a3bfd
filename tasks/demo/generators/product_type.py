"""product_type: home-goods listings into product types, where the photo matters.

Many sellers write titles without saying what the item is ("Nordic Line 240 - Sand"); the
photo still shows a mug or a vase. Numbers and materials overlap between types, so only
the picture settles those rows: the image carries signal no other column has.
Exported as CSV with a byte-order mark, category codes instead of names, and photos in
one folder per category code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from tasks.demo.generators.common import noisy, pick, save_picture, task_rng, unique_ids, write_manifest, write_table
from tasks.demo.generators.images import COLOURS, PATTERNS, encode, product_picture

TASK_ID = "product_type"

# type: (category code, shape, nouns, hint phrases, price eur (median, spread), height cm (mean, sd), weight g (mean, sd), materials)
TYPES = {
    "mug": (
        "HG-104",
        "mug",
        ["Mug", "Coffee Mug", "Tea Cup"],
        ["for your morning coffee", "fits 350 ml of tea"],
        (14, 0.35),
        (10, 2.0),
        (340, 90),
        {"ceramic": 0.5, "porcelain": 0.3, "stoneware": 0.2},
    ),
    "vase": (
        "HG-221",
        "vase",
        ["Vase", "Flower Vase"],
        ["for fresh or dried flowers", "holds a generous bouquet"],
        (32, 0.45),
        (24, 7.0),
        (850, 300),
        {"ceramic": 0.45, "glass": 0.4, "stoneware": 0.15},
    ),
    "table_lamp": (
        "HG-310",
        "lamp",
        ["Table Lamp", "Desk Lamp"],
        ["E27 bulb not included", "warm light for the bedside"],
        (55, 0.4),
        (38, 9.0),
        (1400, 450),
        {"metal": 0.45, "ceramic": 0.3, "glass": 0.25},
    ),
    "bowl": (
        "HG-107",
        "bowl",
        ["Bowl", "Serving Bowl"],
        ["for salads and soups", "great for serving"],
        (18, 0.4),
        (9, 2.5),
        (480, 150),
        {"ceramic": 0.4, "porcelain": 0.3, "stoneware": 0.2, "glass": 0.1},
    ),
    "bottle": (
        "HG-118",
        "bottle",
        ["Bottle", "Water Bottle", "Carafe"],
        ["keeps water cool", "leak-proof cap"],
        (22, 0.35),
        (25, 5.0),
        (420, 140),
        {"glass": 0.5, "metal": 0.3, "stoneware": 0.2},
    ),
    "wall_clock": (
        "HG-402",
        "clock",
        ["Wall Clock", "Clock"],
        ["silent quartz movement", "battery included"],
        (38, 0.35),
        (30, 6.0),
        (760, 220),
        {"metal": 0.4, "glass": 0.3, "ceramic": 0.3},
    ),
    "candle": (
        "HG-515",
        "candle",
        ["Candle", "Pillar Candle"],
        ["burns for about 40 hours", "lightly scented"],
        (12, 0.4),
        (13, 4.0),
        (330, 120),
        {"stoneware": 0.2, "glass": 0.4, "ceramic": 0.4},
    ),
    "plant_pot": (
        "HG-230",
        "pot",
        ["Plant Pot", "Planter"],
        ["with drainage hole", "for indoor plants"],
        (24, 0.4),
        (16, 5.0),
        (760, 260),
        {"ceramic": 0.45, "stoneware": 0.35, "metal": 0.2},
    ),
}
BRANDS = [
    "Nordlys",
    "Casa Terra",
    "Hjem",
    "Maison Lune",
    "Kiln & Co",
    "Oakridge",
    "Studio Sora",
    "Bellweather",
    "Fjordline",
    "Atelier Nove",
    "Greyhaven",
    "Sunday Home",
]
COLLECTIONS = [
    "Nordic Line",
    "Essentials",
    "Terra",
    "Halo",
    "Dune",
    "Aurora",
    "Linea",
    "Pebble",
    "Haven",
    "Mori",
    "Solstice",
    "Basics",
]
ADJECTIVES = [
    "handmade",
    "minimal",
    "classic",
    "modern",
    "rustic",
    "elegant",
    "matte",
    "glazed",
    "speckled",
    "timeless",
]
PHRASES = [
    "Designed in Scandinavia.",
    "A calm piece for everyday use.",
    "Each piece is unique.",
    "Easy to clean.",
    "Makes a thoughtful gift.",
    "Part of our bestselling collection.",
    "Finished by hand.",
]


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_items: int = Field(700, ge=40)
    type_in_title_share: float = Field(
        0.45, ge=0, le=1, description="titles that name the type; the rest rely on the photo"
    )
    hint_in_description_share: float = Field(0.12, ge=0, le=1)
    missing_price_share: float = Field(0.04, ge=0, le=1)
    typo_rate: float = Field(0.03, ge=0, le=1)
    image_size: int = Field(128, ge=32)


def generate(out: Path, seed: int, options: dict) -> None:
    opts = Options(**options)
    rng = task_rng(seed, TASK_ID)
    pics = task_rng(seed, TASK_ID, "pictures")
    names = list(TYPES)
    skus = unique_ids(opts.n_items, rng, "SKU", 7)
    rows = []
    for sku in skus:
        kind = pick(rng, names)
        code, shape, nouns, hints, price, height, weight, materials = TYPES[kind]
        brand, collection = pick(rng, BRANDS), pick(rng, COLLECTIONS)
        colour_name = pick(rng, list(COLOURS))
        if rng.random() < opts.type_in_title_share:
            title = f"{brand} {collection} {pick(rng, nouns)} {colour_name.title()}"
        else:
            title = (
                f"{collection} {int(rng.integers(100, 999))} - {pick(rng, ADJECTIVES).title()} {colour_name.title()}"
            )
        description = " ".join(rng.choice(PHRASES, size=2, replace=False))
        if rng.random() < opts.hint_in_description_share:
            description += f" {pick(rng, hints).capitalize()}."
        pattern, accent = pick(rng, PATTERNS), COLOURS[pick(rng, ["white", "black", "beige", "grey"])]
        image_rel = f"photos/{code}/{sku}.jpg"
        save_picture(
            out,
            image_rel,
            encode(product_picture(shape, COLOURS[colour_name], pattern, accent, pics, opts.image_size), "jpg", pics),
        )
        rows.append(
            {
                "SKU": sku,
                "Product Title": noisy(title, rng, opts.typo_rate),
                "Description": description,
                "Brand": brand,
                "Material": pick(rng, list(materials), p=list(materials.values())),
                "Price EUR": "n/a"
                if rng.random() < opts.missing_price_share
                else f"{np.exp(rng.normal(np.log(price[0]), price[1])):.2f}",
                "Height (cm)": round(max(3.0, rng.normal(*height)), 1),
                "Weight g": int(max(50, rng.normal(*weight))),
                "Photo": image_rel,
                "Category Code": code,
            }
        )
    write_table(pd.DataFrame(rows), out / "home_goods_listings.csv", "csv", encoding="utf-8-sig")
    write_manifest(
        out,
        {
            "id": TASK_ID,
            "type": "classification",
            "track": "classification",
            "primary_metric": "macro_f1",
            "title": "Home-goods listings into product types",
            "description": "Classify marketplace listings into eight product types. Many titles do not name the type; the photo always shows it.",
            "source": {
                "name": "Generated by the mmtc demo generator (tasks/demo/generators/product_type.py), deterministic from the seed in params.yaml",
                "license": "CC0-1.0",
            },
            "files": {
                "data": {
                    "path": "home_goods_listings.csv",
                    "encoding": "utf-8-sig",
                    "columns": {
                        "SKU": "id",
                        "Product Title": {"role": "text", "name": "title"},
                        "Description": "text",
                        "Brand": "categorical",
                        "Material": "categorical",
                        "Price EUR": {"role": "numeric", "name": "price_eur"},
                        "Height (cm)": {"role": "numeric", "name": "height_cm"},
                        "Weight g": {"role": "numeric", "name": "weight_g"},
                        "Photo": {"role": "image", "name": "photo"},
                        "Category Code": "label",
                    },
                }
            },
            "label_mapping": {spec[0]: name for name, spec in TYPES.items()},
            "text_template": "title: {title}. description: {description}",
        },
    )
