"""Nothing published depends on the hidden test labels: the release is the same bytes whatever the
test labels are, a class seen only in test is named nowhere but in the organiser report, and a
matching task's public and private test pairs share no record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.cli import main
from tasks.core.files import sha256_file, sha256_tree
from tasks.ingest.split import pair_groups
from tasks.ingest.stage import draws_seed, ingest_task

TEST_ONLY = "teapot_zz"  # a class name that occurs in nothing but the test file

CLS_YAML = """id: {id}
type: classification
track: classification
primary_metric: macro_f1
title: Given split
files:
  train: {{path: train.csv, columns: {{sku: id, title: text, price: numeric, kind: label}}}}
  test: {{path: test.csv, columns: {{sku: id, title: text, price: numeric, kind: label}}}}
"""
TRAIN = [("T1", "red mug", 9, "mug"), ("T2", "tall vase", 30, "vase"), ("T3", "blue mug", 8, "mug")]
TRAIN += [("T4", "glass vase", 25, "vase"), ("T5", "oak bowl", 14, "bowl"), ("T6", "steel mug", 11, "mug")]
TEST = [("S1", "green mug", 10), ("S2", "short vase", 21), ("S3", "white teapot", 19), ("S4", "tin bowl", 7)]
TEST += [("S5", "clay vase", 33), ("S6", "small mug", 6)]


def given_split_task(root: Path, test_labels: list[str], task: str = "given_items") -> Path:
    folder = root / task
    folder.mkdir(parents=True)
    (folder / "task.yaml").write_text(CLS_YAML.format(id=task))
    rows = lambda data: "\n".join(",".join(map(str, r)) for r in data)  # noqa: E731
    (folder / "train.csv").write_text("sku,title,price,kind\n" + rows(TRAIN) + "\n")
    (folder / "test.csv").write_text(
        "sku,title,price,kind\n" + rows(r + (y,) for r, y in zip(TEST, test_labels, strict=True)) + "\n"
    )
    return folder


def published_text(folder: Path) -> str:
    """Every published value as text: bytes of plain files, decoded values of Parquet files."""
    parts = []
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".parquet":
            parts.append(json.dumps(pq.read_table(path).to_pylist(), default=str))
        elif path.is_file():
            parts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(parts)


def test_given_a_class_only_in_test_when_ingested_then_only_the_organiser_report_names_it(
    tmp_path, ingest_params, capsys
):
    folder = given_split_task(tmp_path / "contrib", ["mug", "vase", TEST_ONLY, "bowl", "vase", "mug"])
    report = ingest_task(folder, tmp_path / "public", tmp_path / "private", ingest_params)
    public = tmp_path / "public" / "given_items"
    card = json.loads((public / "card.json").read_text())
    assert card["classes"] == {"classes": ["bowl", "mug", "vase"], "train_counts": {"bowl": 1, "mug": 3, "vase": 2}}
    assert TEST_ONLY not in published_text(public)
    assert "teapot" in published_text(public)  # the scan does see test features (the title "white teapot")
    organiser = json.loads(report.organiser_report.read_text())
    (finding,) = [f for f in organiser["findings"] if f["kind"] == "test_only_classes"]
    assert finding["classes"] == {TEST_ONLY: 1}
    assert any(TEST_ONLY in f for f in report.findings)
    # what the stage prints (and its logs publish) names neither the class nor that one exists
    assert main(["ingest", "given_items", "--contributions", str(tmp_path / "contrib")] + _roots(tmp_path, "cli")) == 0
    out = capsys.readouterr()
    assert TEST_ONLY not in out.out + out.err and "classes" not in out.out + out.err
    assert "organiser report" in out.out


def _roots(tmp_path: Path, name: str) -> list[str]:
    return ["--public", str(tmp_path / name / "public"), "--private", str(tmp_path / name / "private")]


def test_given_other_test_labels_when_ingested_then_the_release_is_the_same_bytes(tmp_path, ingest_params):
    labels_a = ["mug", "vase", "mug", "bowl", "vase", "mug"]
    labels_b = ["vase", "vase", TEST_ONLY, "mug", "bowl", TEST_ONLY]  # other labels, other class counts
    for name, labels in (("a", labels_a), ("b", labels_b)):
        folder = given_split_task(tmp_path / name / "contrib", labels)
        ingest_task(folder, tmp_path / name / "public", tmp_path / name / "private", ingest_params)
    assert sha256_tree(tmp_path / "a" / "public") == sha256_tree(tmp_path / "b" / "public")
    hidden = lambda name: pq.read_table(tmp_path / name / "private" / "given_items" / "test_labels.parquet")  # noqa: E731
    assert hidden("a").column("label").to_pylist() != hidden("b").column("label").to_pylist()


MATCH_YAML = """id: given_pairs
type: matching
track: matching
primary_metric: f1
title: Given pair split
files:
  left: {path: left.csv, columns: {lid: id, name: text}}
  right: {path: right.csv, columns: {rid: id, name: text}}
  train_pairs: {path: train_pairs.csv, columns: {l: left_id, r: right_id, y: label}}
  test_pairs: {path: test_pairs.csv, columns: {l: left_id, r: right_id, y: label}}
"""


def given_pairs_task(root: Path, test_labels: list[int]) -> Path:
    folder = root / "given_pairs"
    folder.mkdir(parents=True)
    (folder / "task.yaml").write_text(MATCH_YAML)
    names = ["ann", "bob", "cy", "di", "ed", "flo", "gus", "hal", "ivy", "jo", "kai", "lu"]
    (folder / "left.csv").write_text("lid,name\n" + "".join(f"L{i},{n} smith\n" for i, n in enumerate(names)))
    (folder / "right.csv").write_text("rid,name\n" + "".join(f"R{i},{n} smyth\n" for i, n in enumerate(names)))
    train = [(f"L{i}", f"R{i}", 1) for i in range(4)] + [(f"L{i}", f"R{i + 1}", 0) for i in range(4)]
    test = [(f"L{i}", f"R{i}") for i in range(6, 12)] + [(f"L{i}", f"R{i - 1}") for i in range(7, 12)]
    (folder / "train_pairs.csv").write_text("l,r,y\n" + "".join(f"{a},{b},{y}\n" for a, b, y in train))
    (folder / "test_pairs.csv").write_text(
        "l,r,y\n" + "".join(f"{a},{b},{y}\n" for (a, b), y in zip(test, test_labels, strict=True))
    )
    return folder


def test_given_other_test_pair_labels_when_ingested_then_the_release_is_the_same_bytes(tmp_path, ingest_params):
    labels_a = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    labels_b = [0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0]
    for name, labels in (("a", labels_a), ("b", labels_b)):
        folder = given_pairs_task(tmp_path / name / "contrib", labels)
        ingest_task(folder, tmp_path / name / "public", tmp_path / name / "private", ingest_params)
    assert sha256_tree(tmp_path / "a" / "public") == sha256_tree(tmp_path / "b" / "public")


@pytest.mark.parametrize("task", ["product_dedup", "product_variants", "person_link"])
def test_given_a_matching_task_then_public_and_private_test_pairs_share_no_record(
    small_demo, tmp_path, ingest_params, task
):
    ingest_task(small_demo / task, tmp_path / "public", tmp_path / "private", ingest_params)
    pairs = pq.read_table(tmp_path / "public" / task / "test_pairs.parquet").to_pandas()
    hidden = pq.read_table(tmp_path / "private" / task / "test_labels.parquet").to_pandas()
    judged = pairs.merge(hidden, on="pair_id", validate="one_to_one")
    public, private = judged[judged.split == "public"], judged[judged.split == "private"]
    for side in ("left_id", "right_id"):
        assert set(public[side]).isdisjoint(private[side]), f"{task}: a {side} record is in both parts"
    # as close to public_fraction as whole groups allow: within the largest group of test pairs
    left, right = pd.factorize(judged.left_id)[0], pd.factorize(judged.right_id)[0]
    groups = pair_groups(left, right, left.max() + 1, right.max() + 1)
    assert abs(len(public) / len(judged) - ingest_params.public_fraction) <= np.bincount(groups).max() / len(judged)
    organiser = json.loads((tmp_path / "private" / task / "ingest_report.json").read_text())
    if len(set(groups[judged.label.to_numpy() == 1])) >= 2:  # positives in both parts where possible
        assert public.label.sum() > 0 and private.label.sum() > 0
    else:  # and where not, the organisers hear of it
        assert [f["kind"] for f in organiser["findings"]] == ["positives_on_one_side"]
    card = json.loads((tmp_path / "public" / task / "card.json").read_text())
    assert card["split"]["public_private"].startswith("grouped")
    assert organiser["public_private"]["public"]["pairs"] == len(public)
    assert organiser["public_private"]["private"]["positives"] == int(private.label.sum())


def test_given_a_pairs_file_listing_its_matches_first_then_the_release_is_the_same_bytes(
    small_demo, tmp_path, ingest_params
):
    """Pair ids and splits carry no trace of the contribution's row order (a participant who could
    map pair ids back to file order would read the labels of a file sorted by label)."""
    for name in ("as_given", "matches_first"):
        folder = tmp_path / name / "person_link"
        shutil.copytree(small_demo / "person_link", folder)
        if name == "matches_first":
            pairs = pd.read_csv(folder / "candidate_pairs.csv", dtype=str, keep_default_na=False)
            assert set(pairs.same_person) == {"match", "non-match"}
            pairs.sort_values("same_person", kind="stable").to_csv(folder / "candidate_pairs.csv", index=False)
        ingest_task(folder, tmp_path / name / "public", tmp_path / name / "private", ingest_params)
    assert sha256_tree(tmp_path / "as_given" / "public") == sha256_tree(tmp_path / "matches_first" / "public")
    hidden = lambda name: tmp_path / name / "private" / "person_link" / "test_labels.parquet"  # noqa: E731
    assert sha256_file(hidden("as_given")) == sha256_file(hidden("matches_first"))  # (the contribution digest differs)


def test_draws_seed_needs_the_test_labels_and_ignores_row_order():
    keys = pa.table({"id": ["a", "b", "c", "d"], "label": ["x", "y", "x", "y"]})
    seed = draws_seed(17, keys)
    assert draws_seed(17, keys.take([3, 1, 0, 2])) == seed
    assert draws_seed(17, keys.set_column(1, "label", pa.array(["x", "y", "y", "y"]))) != seed
    assert draws_seed(18, keys) != seed
