"""product_dedup: is this listing of shop A the very same product as that listing of shop B?

Products come in lines (a brand's kettle line has models AB-200, AB-210, ...). Models of a
line share a shape and often their specs; they differ in model code and design (colour and
pattern on the photo). Shop B writes titles its own way, makes typos, and often drops the
model code or the colour: then only the photo tells two models of a line apart.
Candidate pairs are all A x B listings of the same line (blocking on brand and line).
Shop A exports JSON lines; shop B a latin-1 CSV; the labelled pairs are a TSV with Y/N.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from tasks.demo.generators.common import noisy, pick, save_picture, task_rng, write_manifest, write_table
from tasks.demo.generators.images import COLOURS, PATTERNS, encode, product_picture

TASK_ID = "product_dedup"
# category: (shape, noun A, noun B, spec template, spec values, base price)
CATEGORIES = {
    "kettle": ("kettle", "Electric Kettle", "kettle", "{} L", [1.0, 1.2, 1.5, 1.7], 45),
    "toaster": ("toaster", "Toaster", "toaster", "{} slots", [2, 4], 40),
    "headphones": ("headphones", "Wireless Headphones", "bt headphones", "{} h battery", [20, 30, 40, 50], 90),
    "speaker": ("speaker", "Bluetooth Speaker", "speaker", "{} W", [10, 20, 30, 40], 70),
    "desk_lamp": ("lamp", "LED Desk Lamp", "desk lamp", "{} lm", [400, 600, 800], 35),
    "wall_clock": ("clock", "Wall Clock", "clock", "{} cm", [25, 30, 35, 40], 30),
}
BRANDS = [
    "Voltra",
    "Kinetix",
    "Aurelo",
    "Brisa",
    "Nordvik",
    "Sonique",
    "Tempo",
    "Lumina",
    "Hexa",
    "Qube",
    "Arcadia",
    "Zenith",
]
LINE_NAMES = [
    "Aero",
    "Nova",
    "Pulse",
    "Vita",
    "Flux",
    "Orbit",
    "Prime",
    "Edge",
    "Wave",
    "Core",
    "Swift",
    "Nimbus",
    "Echo",
    "Terra",
    "Glide",
    "Spark",
]
ABBREVIATIONS = {
    "Wireless": "Wrls",
    "Electric": "El.",
    "Bluetooth": "BT",
    "Headphones": "Headph.",
    "Speaker": "Spkr",
    "Kettle": "Ktl",
    "Lamp": "Lmp",
}


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_lines: int = Field(70, ge=4)
    models_per_line: tuple[int, int] = (2, 4)
    listed_share_a: float = Field(0.8, gt=0, le=1)
    listed_share_b: float = Field(0.75, gt=0, le=1)
    drop_model_code_b: float = Field(0.4, ge=0, le=1, description="shop B titles without the model code")
    drop_colour_b: float = Field(0.5, ge=0, le=1)
    same_specs_in_line: float = Field(0.6, ge=0, le=1, description="chance that a new model copies the line's specs")
    typo_rate_b: float = Field(0.08, ge=0, le=1)
    image_size: int = Field(128, ge=32)


def _catalogue(opts: Options, rng: np.random.Generator) -> pd.DataFrame:
    products = []
    for line_no in range(opts.n_lines):
        category = pick(rng, list(CATEGORIES))
        shape, noun_a, noun_b, spec_t, spec_values, base = CATEGORIES[category]
        brand, line = pick(rng, BRANDS), f"{pick(rng, LINE_NAMES)}{pick(rng, ['', ' Pro', ' Mini', ' Plus', ' Max'])}"
        prefix = "".join(w[0] for w in line.split()).upper() + pick(rng, ["", "X", "S"])
        spec = pick(rng, spec_values)
        line_price = base * rng.uniform(0.7, 1.6)
        n_models = int(rng.integers(opts.models_per_line[0], opts.models_per_line[1] + 1))
        codes = sorted(rng.choice(np.arange(10, 99), size=n_models, replace=False) * 10)
        used_designs = set()
        for code in codes:
            if rng.random() > opts.same_specs_in_line:
                spec = pick(rng, spec_values)
            while True:  # models of one line never share a design
                design = (pick(rng, list(COLOURS)), pick(rng, PATTERNS))
                if design not in used_designs:
                    used_designs.add(design)
                    break
            products.append(
                {
                    "line": line_no,
                    "category": category,
                    "shape": shape,
                    "noun_a": noun_a,
                    "noun_b": noun_b,
                    "brand": brand,
                    "line_name": line,
                    "model": f"{prefix}-{code}",
                    "spec": spec_t.format(spec),
                    "colour": design[0],
                    "pattern": design[1],
                    "accent": pick(rng, ["white", "black", "grey"]),
                    "price": round(line_price * rng.uniform(0.9, 1.15), 2),
                }
            )
    return pd.DataFrame(products)


def generate(out: Path, seed: int, options: dict) -> None:
    opts = Options(**options)
    rng = task_rng(seed, TASK_ID)
    pics = task_rng(seed, TASK_ID, "pictures")
    catalogue = _catalogue(opts, rng)
    a_rows: list[dict] = []
    b_rows: list[dict] = []
    for p in catalogue.itertuples():
        pid = p.Index
        for shop, share, rows in (("a", opts.listed_share_a, a_rows), ("b", opts.listed_share_b, b_rows)):
            if rng.random() >= share:
                continue
            listing_id = f"{shop.upper()}{int(rng.integers(10**6, 10**7))}"
            image_rel = f"img/{listing_id.lower()}.png"
            picture = product_picture(p.shape, COLOURS[p.colour], p.pattern, COLOURS[p.accent], pics, opts.image_size)
            save_picture(out, image_rel, encode(picture, "png", pics))
            if shop == "a":
                title = f"{p.brand} {p.line_name} {p.model} {p.noun_a}, {p.spec}, {p.colour.title()}"
                rows.append(
                    {
                        "listingId": listing_id,
                        "title": title,
                        "brand": p.brand,
                        "categoryPath": f"Electronics > {p.noun_a}",
                        "priceEur": p.price,
                        "imagePath": image_rel,
                        "_pid": pid,
                        "_line": p.line,
                    }
                )
            else:
                words = [p.brand.upper() if rng.random() < 0.3 else p.brand, p.line_name]
                if rng.random() >= opts.drop_model_code_b:
                    words.append(p.model.replace("-", "") if rng.random() < 0.5 else p.model)
                words.append(p.noun_b)
                if rng.random() >= 0.3:
                    words.append(p.spec.replace(" ", ""))
                if rng.random() >= opts.drop_colour_b:
                    words.append(p.colour)
                body = words[1:]
                rng.shuffle(body)
                title = " ".join([words[0]] + body)
                title = " ".join(ABBREVIATIONS.get(w, w) if rng.random() < 0.3 else w for w in title.split())
                price = p.price * rng.uniform(0.93, 1.08)
                rows.append(
                    {
                        "ref": listing_id,
                        "Titel": noisy(title, rng, opts.typo_rate_b),
                        "Marke": p.brand if rng.random() > 0.15 else "",
                        "Kategorie": p.noun_b,
                        "Preis": f"{np.floor(price) + 0.99:.2f}",
                        "Bild": image_rel,
                        "_pid": pid,
                        "_line": p.line,
                    }
                )
    shop_a, shop_b = pd.DataFrame(a_rows), pd.DataFrame(b_rows)
    pairs = shop_a[["listingId", "_pid", "_line"]].merge(
        shop_b[["ref", "_pid", "_line"]], on="_line", suffixes=("_a", "_b")
    )
    pairs = pd.DataFrame(
        {"a": pairs["listingId"], "b": pairs["ref"], "same": np.where(pairs["_pid_a"] == pairs["_pid_b"], "Y", "N")}
    )
    pairs = pairs.sample(frac=1.0, random_state=int(rng.integers(2**31)))
    write_table(
        shop_a.drop(columns=["_pid", "_line"]).sample(frac=1.0, random_state=3), out / "shop_a_listings.jsonl", "jsonl"
    )
    write_table(
        shop_b.drop(columns=["_pid", "_line"]).sample(frac=1.0, random_state=4),
        out / "shop_b_export.csv",
        "csv",
        encoding="latin-1",
    )
    write_table(pairs, out / "labelled_pairs.tsv", "tsv")
    write_manifest(
        out,
        {
            "id": TASK_ID,
            "type": "matching",
            "track": "matching",
            "primary_metric": "f1",
            "title": "Same product in two shops",
            "description": "Decide whether two listings from different shops sell the very same product (same model). Pairs are all listings of one product line across the shops; models of a line differ in code and design, and shop B often omits both.",
            "source": {
                "name": "Generated by the mmtc demo generator (tasks/demo/generators/product_dedup.py), deterministic from the seed in params.yaml",
                "license": "CC0-1.0",
                "notes": "candidate pairs by blocking on brand and product line",
            },
            "files": {
                "left": {
                    "path": "shop_a_listings.jsonl",
                    "columns": {
                        "listingId": "id",
                        "title": "text",
                        "brand": "categorical",
                        "categoryPath": {"role": "categorical", "name": "category"},
                        "priceEur": {"role": "numeric", "name": "price"},
                        "imagePath": {"role": "image", "name": "image"},
                    },
                },
                "right": {
                    "path": "shop_b_export.csv",
                    "encoding": "latin-1",
                    "columns": {
                        "ref": "id",
                        "Titel": {"role": "text", "name": "title"},
                        "Marke": {"role": "categorical", "name": "brand"},
                        "Kategorie": {"role": "categorical", "name": "category"},
                        "Preis": {"role": "numeric", "name": "price"},
                        "Bild": {"role": "image", "name": "image"},
                    },
                },
                "pairs": {"path": "labelled_pairs.tsv", "columns": {"a": "left_id", "b": "right_id", "same": "label"}},
            },
            "label_mapping": {"Y": 1, "N": 0},
            "text_template": "{title}",
        },
    )
