"""Ingest publishes a standard release, hides test labels, and is byte-for-byte repeatable."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tasks.core.errors import InputError
from tasks.core.files import sha256_file, sha256_tree
from tasks.ingest.stage import ingest_task
from tests.conftest import CORPUS


def ingest(folder, tmp_path, params):
    return ingest_task(folder, tmp_path / "public", tmp_path / "private", params)


def test_classification_release(good_classification, tmp_path, ingest_params):
    report = ingest(good_classification, tmp_path, ingest_params)
    pub, priv = tmp_path / "public" / "good_items", tmp_path / "private" / "good_items"
    assert sorted(p.name for p in pub.iterdir()) == [
        "card.json",
        "images",
        "sample_submission.csv",
        "test.csv",
        "test.parquet",
        "train.csv",
        "train.parquet",
    ]
    train, test = pq.read_table(pub / "train.parquet"), pq.read_table(pub / "test.parquet")
    assert train.column_names == ["id", "title", "price", "colour", "photo", "label"]
    assert "label" not in test.column_names
    hidden = pq.read_table(priv / "test_labels.parquet")
    assert hidden.column_names == ["id", "label", "split"]
    assert sorted(hidden.column("id").to_pylist()) == sorted(test.column("id").to_pylist())
    assert set(hidden.column("split").to_pylist()) <= {"public", "private"}
    assert train.num_rows + test.num_rows == 6 and report.rows == {"train": train.num_rows, "test": test.num_rows}
    assert train.column("price").type == "double"
    # images are content-addressed copies named by their checksum
    for rel in train.column("photo").to_pylist() + test.column("photo").to_pylist():
        path = pub / rel
        assert path.is_file() and sha256_file(path) == path.stem
    card = json.loads((pub / "card.json").read_text())
    assert card["features"] == {"title": "text", "price": "numeric", "colour": "categorical", "photo": "image"}
    assert card["classes"]["classes"] == ["mug", "vase"]
    for name, digest in card["files_sha256"].items():
        assert sha256_file(pub / name) == digest
    assert card["split"]["seed"] == ingest_params.seed
    # the contribution's digest covers its raw test labels: organisers only
    assert "contribution_sha256" not in card
    organiser = json.loads((priv / "ingest_report.json").read_text())
    assert organiser["contribution_sha256"] == sha256_tree(good_classification)
    assert report.organiser_report == priv / "ingest_report.json"
    assert sorted(p.name for p in priv.iterdir()) == ["ingest_report.json", "test_labels.parquet"]


def test_ingest_is_deterministic(good_classification, tmp_path, ingest_params):
    ingest_task(good_classification, tmp_path / "a", tmp_path / "a_priv", ingest_params)
    ingest_task(good_classification, tmp_path / "b", tmp_path / "b_priv", ingest_params)
    assert sha256_tree(tmp_path / "a") == sha256_tree(tmp_path / "b")
    assert sha256_tree(tmp_path / "a_priv") == sha256_tree(tmp_path / "b_priv")


def test_a_changed_seed_changes_the_split(good_classification, tmp_path, ingest_params):
    """Six rows have only nine splits: some of four other seeds must give another one."""
    splits = set()
    for seed in (ingest_params.seed, 99, 100, 101, 102):
        ingest_task(
            good_classification,
            tmp_path / f"{seed}",
            tmp_path / f"p{seed}",
            ingest_params.model_copy(update={"seed": seed}),
        )
        splits.add(tuple(pq.read_table(tmp_path / f"{seed}" / "good_items" / "test.parquet").column("id").to_pylist()))
    assert len(splits) > 1


def test_a_refused_contribution_keeps_the_previous_release(good_classification, tmp_path, ingest_params):
    ingest(good_classification, tmp_path, ingest_params)
    before = sha256_tree(tmp_path / "public" / "good_items")
    (good_classification / "items.csv").write_text(
        (good_classification / "items.csv").read_text().replace("12.5", "twelve")
    )
    with pytest.raises(InputError):
        ingest(good_classification, tmp_path, ingest_params)
    assert sha256_tree(tmp_path / "public" / "good_items") == before


def test_bad_images_within_allowance_are_published_as_missing(good_classification, tmp_path, ingest_params):
    (good_classification / "img" / "a2.png").write_bytes(b"broken")
    report = ingest(good_classification, tmp_path, ingest_params.model_copy(update={"max_bad_image_share": 0.2}))
    assert report.bad_images == 1
    pub = tmp_path / "public" / "good_items"
    photos = (
        pq.read_table(pub / "train.parquet").column("photo").to_pylist()
        + pq.read_table(pub / "test.parquet").column("photo").to_pylist()
    )
    assert photos.count(None) == 1
    assert json.loads((pub / "card.json").read_text())["images"]["unusable_rows_published_as_null"] == 1
    organiser = json.loads((tmp_path / "private" / "good_items" / "ingest_report.json").read_text())
    assert [e["problem"] for e in organiser["unusable_images"]] == [
        "1 file is not a PNG, JPEG, WebP, GIF, BMP or TIFF image (img/a2.png: content of no known kind)"
    ]


@pytest.mark.parametrize("task", ["product_dedup", "product_variants", "person_link"])
def test_matching_release_keeps_records_apart(small_demo, tmp_path, ingest_params, task):
    ingest(small_demo / task, tmp_path, ingest_params)
    pub = tmp_path / "public" / task
    train, test = pq.read_table(pub / "train_pairs.parquet"), pq.read_table(pub / "test_pairs.parquet")
    assert train.column_names == ["left_id", "right_id", "label"]
    assert test.column_names == ["pair_id", "left_id", "right_id"]
    for side in ("left_id", "right_id"):
        assert set(train.column(side).to_pylist()).isdisjoint(test.column(side).to_pylist())
    left, right = pq.read_table(pub / "left.parquet"), pq.read_table(pub / "right.parquet")
    assert left.schema == right.schema
    hidden = pq.read_table(tmp_path / "private" / task / "test_labels.parquet")
    assert hidden.column_names == ["pair_id", "label", "split"]
    assert sorted(hidden.column("pair_id").to_pylist()) == test.column("pair_id").to_pylist()
    assert set(hidden.column("label").to_pylist()) == {0, 1}
    card = json.loads((pub / "card.json").read_text())
    assert "connected components" in card["split"]["method"]
    assert "test_pairs_identical_to_a_train_pair" in card["duplicates"]


def test_given_split_is_kept(small_demo, tmp_path, ingest_params):
    ingest(small_demo / "fastfood_chain", tmp_path, ingest_params)
    card = json.loads((tmp_path / "public" / "fastfood_chain" / "card.json").read_text())
    assert card["split"]["method"].startswith("given")
    raw_test = (small_demo / "fastfood_chain" / "menu_test.jsonl").read_text().count("\n")
    assert card["tables"]["test"]["rows"] == raw_test
    assert len(card["classes"]["classes"]) == 8


def test_duplicates_across_train_and_test_are_counted(good_classification, tmp_path, ingest_params):
    lines = (good_classification / "items.csv").read_text().splitlines()
    twin = lines[1].split(",")
    copies = [",".join([f"B{i}"] + twin[1:]) for i in range(6)]
    (good_classification / "items.csv").write_text("\n".join(lines + copies) + "\n")
    ingest(good_classification, tmp_path, ingest_params)
    card = json.loads((tmp_path / "public" / "good_items" / "card.json").read_text())
    assert card["duplicates"]["test_rows_identical_to_a_train_row"] >= 1
    assert card["duplicates"]["train_rows_repeated_within_train"] >= 1


def test_validate_writes_nothing(good_classification, tmp_path, ingest_params):
    from tasks.ingest.stage import validate_task

    shutil.copytree(good_classification, tmp_path / "copy" / "good_items")
    assert validate_task(tmp_path / "copy" / "good_items", ingest_params).id == "good_items"
    assert not (tmp_path / "public").exists()


@pytest.mark.parametrize("case", ["image_bomb_png", "image_bomb_jpeg_header", "image_bomb_gif_header"])
def test_given_an_image_bomb_then_it_is_refused_from_its_header_without_decoding(
    case, tmp_path, ingest_params, monkeypatch
):
    from PIL import Image, ImageFile

    decoded = []
    real_load = ImageFile.ImageFile.load

    def load(img):
        decoded.append(img.size)
        return real_load(img)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    limit = Image.MAX_IMAGE_PIXELS
    with pytest.raises(InputError, match="too many pixels"):
        ingest(CORPUS / "broken" / case, tmp_path, ingest_params)
    assert decoded and all(w * h <= 64 for w, h in decoded)  # the 8 x 8 photos only
    assert limit == Image.MAX_IMAGE_PIXELS  # Pillow's own setting is left as it was


def test_given_a_bomb_within_the_bad_image_allowance_then_it_is_published_as_null_and_not_copied(
    tmp_path, ingest_params
):
    folder = tmp_path / "image_bomb_png"
    shutil.copytree(CORPUS / "broken" / "image_bomb_png", folder)
    report = ingest(folder, tmp_path, ingest_params.model_copy(update={"max_bad_image_share": 0.2}))
    assert report.bad_images == 1 and report.images == 5
    pub = tmp_path / "public" / "image_bomb_png"
    assert max(p.stat().st_size for p in (pub / "images").iterdir()) < 1000
    organiser = json.loads(report.organiser_report.read_text())
    assert "20,000 x 20,000 pixels" in organiser["unusable_images"][0]["message"]


def test_each_release_has_a_sample_submission_that_submit_accepts(
    good_classification, small_demo, tmp_path, ingest_params
):
    from tasks.core.params import SubmitParams
    from tasks.submissions.submit import submit
    from tasks.submissions.validate import load_contracts

    ingest(good_classification, tmp_path, ingest_params)
    ingest(small_demo / "person_link", tmp_path, ingest_params)
    cls = pq.read_table(tmp_path / "public" / "good_items" / "train.parquet")
    sample = pd.read_csv(tmp_path / "public" / "good_items" / "sample_submission.csv", dtype=str)
    test_ids = pq.read_table(tmp_path / "public" / "good_items" / "test.parquet").column("id").to_pylist()
    assert list(sample.columns) == ["id", "label"] and sample["id"].tolist() == test_ids
    top = pd.Series(cls.column("label").to_pylist()).value_counts()
    assert set(sample["label"]) == {sorted(top[top == top.max()].index)[0]}  # from train labels only
    pairs = pd.read_csv(tmp_path / "public" / "person_link" / "sample_submission.csv")
    assert list(pairs.columns) == ["pair_id", "label"] and set(pairs["label"]) == {0}
    card = json.loads((tmp_path / "public" / "good_items" / "card.json").read_text())
    assert "sample_submission.csv" in card["files_sha256"]
    contracts = load_contracts(tmp_path / "public", ["good_items", "person_link"])
    params = SubmitParams(max_per_day=5, max_total=10, max_file_mb=5, max_description_chars=100)
    for task in ("good_items", "person_link"):
        folder = tmp_path / "try" / task
        folder.mkdir(parents=True)
        (folder / f"{task}.csv").write_bytes((tmp_path / "public" / task / "sample_submission.csv").read_bytes())
        result = submit(folder, "team-a", submissions_root=tmp_path / "subs", contracts=contracts, params=params)
        assert result.accepted, result.summary()
