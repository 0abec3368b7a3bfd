"""Features: classification columns, pair comparisons, fitting on train only, ablation filters."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tasks.core.errors import InputError
from tasks.core.schema import Role
from tasks.train.features import (
    bow_vocabulary,
    build_features,
    load_embeddings,
    load_release,
    pair_groups,
)
from tests.synthetic import classification_release, matching_release, write_embedding


@pytest.fixture
def small(project_params):
    return project_params.train.model_copy(update={"image_pca_dims": 4, "text_pca_dims": 3, "bow_max_tokens": 20})


def test_classification_columns_and_roles(tmp_path, small):
    public, emb = classification_release(tmp_path)
    release = load_release(public)
    fs = build_features(release, load_embeddings(emb, release), small)
    assert fs.cat_features == ["brand"]
    assert fs.train["brand"].isin(["<missing>"]).any()  # CatBoost gets a string, never null
    assert "price" in fs.train and fs.train["price"].isna().any()
    assert [c for c in fs.train if c.startswith("photo~emb~")] == [f"photo~emb~{j:03d}" for j in range(4)]
    assert [c for c in fs.train if c.startswith("text~emb~")] == [f"text~emb~{j:03d}" for j in range(3)]
    assert any(c.startswith("title~bow~") for c in fs.train)
    # the row whose photo is missing has no image values, and a flag says so
    assert fs.train.loc[5, [f"photo~emb~{j:03d}" for j in range(4)]].isna().all()
    assert fs.train.loc[5, "photo~missing"] == 1.0
    assert list(fs.train.columns) == list(fs.test.columns)


def test_pca_is_fitted_on_train_only(tmp_path, small):
    public, emb = classification_release(tmp_path)
    release = load_release(public)
    before = build_features(release, load_embeddings(emb, release), small)
    # rewrite the test rows' photo vectors: train features must not move
    table = pq.read_table(emb / "photo.parquet").to_pandas()
    vec = np.stack(table["vector"].to_numpy())
    test = (table["table"] == "test").to_numpy()
    vec[test] = np.roll(vec[test], 3, axis=1)
    write_embedding(emb / "photo.parquet", list(zip(table["table"], table["id"])), vec, table["missing"].to_numpy())
    after = build_features(release, load_embeddings(emb, release), small)
    cols = [c for c in before.train if c.startswith("photo~emb~")]
    pd.testing.assert_frame_equal(before.train[cols], after.train[cols])
    assert not np.allclose(before.test[cols].to_numpy(), after.test[cols].to_numpy())


def test_restrict_keeps_only_features_of_the_given_roles(tmp_path, small):
    public, emb = classification_release(tmp_path)
    release = load_release(public)
    fs = build_features(release, load_embeddings(emb, release), small)
    no_images = fs.restrict({Role.text, Role.numeric, Role.categorical})
    assert not any(c.startswith("photo") for c in no_images.train)
    assert "price" in no_images.train and "brand" in no_images.cat_features
    text_only = fs.restrict({Role.text})
    assert text_only.roles() == {Role.text}
    assert set(text_only.train.columns) == {c for c in fs.train if c.startswith(("title~", "text~", "text_model~"))}
    assert any(c.startswith("text_model~p~") for c in text_only.train)


def test_missing_embedding_file_names_the_fix(tmp_path, small):
    public, emb = classification_release(tmp_path)
    (emb / "photo.parquet").unlink()
    with pytest.raises(InputError) as err:
        load_embeddings(emb, load_release(public))
    assert "photo" in str(err.value) and "embed" in err.value.fix


def test_text_left_out_by_the_embed_stage_is_not_required(tmp_path, small):
    """embed.text.<task>.columns: [] leaves text.parquet out, and meta.json says so; images stay required."""
    public, emb = classification_release(tmp_path)
    (emb / "text.parquet").unlink()
    (emb / "meta.json").write_text(json.dumps({"files": {"photo.parquet": {}}}))
    release = load_release(public)
    assert set(load_embeddings(emb, release)) == {"photo"}
    (emb / "meta.json").write_text(json.dumps({"files": {"photo.parquet": {}, "text.parquet": {}}}))
    with pytest.raises(InputError, match="text"):
        load_embeddings(emb, release)


def test_records_without_embedding_are_refused_with_their_rows(tmp_path):
    public, emb = classification_release(tmp_path)
    table = pq.read_table(emb / "text.parquet").to_pandas().iloc[4:]
    write_embedding(emb / "text.parquet", list(zip(table["table"], table["id"])), np.stack(table["vector"].to_numpy()))
    with pytest.raises(InputError) as err:
        load_embeddings(emb, load_release(public))
    assert "no embedding" in err.value.problem and list(err.value.rows)[:2] == [0, 1]


def test_bow_vocabulary_is_frequency_then_alphabetical():
    texts = ["b a", "a c", "c b a", "d"]
    assert bow_vocabulary(texts, max_tokens=2, min_count=2) == ["a", "b"]
    assert bow_vocabulary(texts, max_tokens=10, min_count=2) == ["a", "b", "c"]


def test_pair_features_compare_each_attribute(tmp_path, small):
    public, emb = matching_release(tmp_path)
    release = load_release(public)
    fs = build_features(release, load_embeddings(emb, release), small)
    pairs = release.tables["train_pairs"]
    left = release.tables["left"].set_index("id").loc[pairs["left_id"]].reset_index()
    right = release.tables["right"].set_index("id").loc[pairs["right_id"]].reset_index()
    assert len(fs.train) == len(pairs) and len(fs.test) == len(release.tables["test_pairs"])
    np.testing.assert_allclose(fs.train["price~absdiff"], (left["price"] - right["price"]).abs())
    rel = (left["price"] - right["price"]).abs() / np.maximum(left["price"].abs(), right["price"].abs())
    np.testing.assert_allclose(fs.train["price~reldiff"], rel)
    # categorical equality ignores case: 'red' on the left equals 'RED' on the right
    expected = (left["colour"].str.lower() == right["colour"].str.lower()).astype(float)
    np.testing.assert_array_equal(fs.train["colour~equal"], expected)
    assert fs.train["title~missing"].eq(0).all()
    for col in (
        "title~ratio",
        "title~token_set",
        "title~jaro_winkler",
        "title~tfidf_cos",
        "image~clip_cos",
        "text~clip_cos",
    ):
        assert fs.train[col].between(-1, 1).all(), col


def test_core_text_discounts_colour_and_size(tmp_path, small):
    public, emb = matching_release(tmp_path)
    release = load_release(public)
    fs = build_features(release, load_embeddings(emb, release), small)
    labels = release.tables["train_pairs"]["label"].to_numpy()
    # a true pair differs only in colour and size: its core titles are the same words
    assert (fs.train.loc[labels == 1, "title~core_token_set"] == 1.0).all()
    assert (fs.train.loc[labels == 1, "title~token_set"] < 1.0).any()
    # siblings ('Model7' vs 'Model7 Pro') still differ after stripping
    assert (fs.train.loc[labels == 0, "title~core_tokens_jaccard"] < 1.0).all()
    assert {f.uses for f in fs.features if f.name == "title~core_token_set"} == {
        frozenset({Role.text, Role.categorical})
    }


def test_numbers_in_text_compare_however_written(tmp_path, small):
    public, emb = matching_release(tmp_path)
    first = pq.read_table(public / "train_pairs.parquet").to_pandas().iloc[0]
    left = pq.read_table(public / "left.parquet").to_pandas()
    right = pq.read_table(public / "right.parquet").to_pandas()
    left.loc[left["id"] == first["left_id"], "title"] = "Lumina Echo EMS-650 toaster, 2 slots"
    right.loc[right["id"] == first["right_id"], "title"] = "LUMINA 2slots EMS650 toaster"
    left.to_parquet(public / "left.parquet", index=False)
    right.to_parquet(public / "right.parquet", index=False)
    release = load_release(public)
    fs = build_features(release, load_embeddings(emb, release), small)
    assert fs.train.loc[0, "title~numbers_jaccard"] == 1.0
    assert fs.train.loc[0, "title~numbers_only_left"] == 0.0


def test_pair_groups_are_connected_components(tmp_path):
    public, _ = matching_release(tmp_path)
    release = load_release(public)
    groups = pair_groups(release)
    pairs = release.tables["train_pairs"]
    for key in ("left_id", "right_id"):
        assert (pd.DataFrame({"k": pairs[key], "g": groups}).groupby("k")["g"].nunique() == 1).all()


def test_matching_features_a_strong_matcher_uses(tmp_path, small):
    """Word and whole-record TF-IDF cosines, rare-token overlap, numbers as ratios, years as differences."""
    public, emb = matching_release(tmp_path)
    pairs = pq.read_table(public / "train_pairs.parquet").to_pandas()
    left = pq.read_table(public / "left.parquet").to_pandas()
    right = pq.read_table(public / "right.parquet").to_pandas()
    # years are compared where records carry them (here: every record, as model years)
    left["title"] = left["title"] + [f" {2000 + i % 9}" for i in range(len(left))]
    right["title"] = right["title"] + [f" {2000 + i % 9}" for i in range(len(right))]
    titles = [
        ("Lumina Zephyrine kettle", "lumina kettle zephyrine steel"),
        ("Lumina Echo kettle 1999 650 W", "lumina echo kettle (2001) 600W"),
    ]
    for k, (a, b) in enumerate(titles):
        left.loc[left["id"] == pairs.iloc[k]["left_id"], "title"] = a
        right.loc[right["id"] == pairs.iloc[k]["right_id"], "title"] = b
    left.to_parquet(public / "left.parquet", index=False)
    right.to_parquet(public / "right.parquet", index=False)
    release = load_release(public)
    fs = build_features(release, load_embeddings(emb, release), small)
    for name in ("title~tfidf_word_cos", "record~tfidf_cos", "record~tfidf_word_cos", "title~idf_jaccard"):
        assert fs.train[name].between(0, 1 + 1e-9).all(), name
    assert {f.uses for f in fs.features if f.name == "record~tfidf_cos"} == {frozenset({Role.text, Role.categorical})}
    # every token of the left title is on the right; the right's rarest ('steel', seen once) is not on the left
    assert fs.train.loc[0, "title~rare_left_in_right"] == 1.0
    assert fs.train.loc[0, "title~rare_right_in_left"] == pytest.approx(2 / 3)
    # 650 W vs 600W, 1999 vs 2001: close numbers, two years apart
    assert 0.9 < fs.train.loc[1, "title~numbers_ratio"] < 1.0
    assert fs.train.loc[1, "title~year_absdiff"] == 2.0
    assert fs.train["price~ratio"].between(0, 1).all()


def test_the_text_model_is_fast_and_out_of_fold(tmp_path, small):
    """Its train probabilities come from models that did not see the row (cross-fitting)."""
    from tasks.train.features import text_model_probabilities

    rng = np.random.default_rng(0)
    y = np.array(["a", "b"] * 100, dtype=object)
    texts = [f"{'alpha' if c == 'a' else 'beta'} {rng.integers(1000)}" for c in y]
    oof, proba, classes = text_model_probabilities(texts, y, ["alpha 5", "beta 7"], seed=1)
    assert classes == ["a", "b"] and oof.shape == (200, 2) and proba.shape == (2, 2)
    assert (oof.argmax(axis=1) == (y == "b")).mean() > 0.95
    assert proba[0, 0] > 0.5 and proba[1, 1] > 0.5
