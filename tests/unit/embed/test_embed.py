"""The embed stage on small releases with a tiny random-weight CLIP: output contract, the
content cache (hits, new rows only, same vectors without it), bad images, text choices."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.core.errors import InputError
from tasks.core.params import TextChoice
from tasks.embed.clip import load_encoder, resolve_weights
from tasks.embed.stage import EmbeddingCache, TextSpec, embed_task, join_text, text_spec
from tests.unit.embed.helpers import classification, embed_params, make_release, record, tiny_clip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(identity, encoder) of the tiny model, loaded once."""
    memo = tmp_path_factory.mktemp("memo")
    identity = resolve_weights(tiny_clip(), memo_dir=memo)
    return identity, load_encoder(identity, tiny_clip(), "cpu")


def run(tmp_path, tiny, task="items", cache=True, params=None, out="out", public="public"):
    identity, encoder = tiny
    return embed_task(
        task,
        tmp_path / public,
        tmp_path / out,
        params or embed_params(),
        identity,
        cache_root=tmp_path / "cache" if cache else None,
        encoder=encoder,
        progress=False,
    )


def vectors(path) -> np.ndarray:
    table = pq.read_table(path)
    return np.asarray(table.column("vector").combine_chunks().flatten().to_numpy()).reshape(table.num_rows, -1)


def meta(tmp_path, task="items", out="out") -> dict:
    return json.loads((tmp_path / out / task / "meta.json").read_text())


def test_outputs_follow_the_contract(tmp_path, tiny):
    classification(tmp_path / "public", "items", 12)
    report = run(tmp_path, tiny)
    folder = tmp_path / "out" / "items"
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "photo.parquet", "text.parquet"]
    for stem in ("photo", "text"):
        table = pq.read_table(folder / f"{stem}.parquet")
        assert table.schema.names == ["table", "id", "vector", "missing"]
        assert table.schema.field("vector").type == pa.list_(pa.float32())
        assert table.schema.field("id").type == pa.string() and table.schema.field("missing").type == pa.bool_()
        keys = list(
            zip([["train", "test"].index(t) for t in table.column("table").to_pylist()], table.column("id").to_pylist())
        )
        assert keys == sorted(keys) and table.num_rows == 12
        v = vectors(folder / f"{stem}.parquet")
        assert v.shape == (12, 32) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
        assert not any(table.column("missing").to_pylist())
    m = meta(tmp_path)
    assert m["model"] == "mmtc-tiny-test" and m["dims"] == 32 and m["device"] == "cpu" and m["dtype"] == "float32"
    assert m["weights"]["kind"] == "random-init" and m["random_init"] is True and m["weights"]["seed"] == 0
    assert m["files"]["photo.parquet"]["rows"] == 12 and m["files"]["text.parquet"]["template"] == "{title}"
    assert m["failed"] == [] and report.cache_misses == 24 and report.cache_hits == 0


def test_rerun_is_served_from_the_cache_with_the_same_bytes(tmp_path, tiny):
    classification(tmp_path / "public", "items", 10)
    run(tmp_path, tiny, out="first")
    second = run(tmp_path, tiny, out="second")
    assert second.cache_hits == 20 and second.cache_misses == 0
    for name in ("photo.parquet", "text.parquet", "meta.json"):  # meta.json says nothing of the cache
        assert (tmp_path / "first" / "items" / name).read_bytes() == (tmp_path / "second" / "items" / name).read_bytes()


def test_vectors_do_not_depend_on_the_cache(tmp_path, tiny):
    """Cached vectors were computed in other batches; without the cache they are recomputed: same up to float rounding."""
    classification(tmp_path / "public", "items", 9, start=100)
    run(tmp_path, tiny, out="warm-up")  # fills the cache from 9 items
    classification(tmp_path / "public", "items", 14, start=95)  # 5 new items change every batch
    cached = run(tmp_path, tiny, out="cached")
    assert cached.cache_hits == 18 and cached.cache_misses == 10
    uncached = run(tmp_path, tiny, out="uncached", cache=False)
    assert uncached.cache_hits == 0 and uncached.run_metrics(cache_enabled=False)["cache"]["enabled"] is False
    for stem in ("photo", "text"):
        np.testing.assert_allclose(
            vectors(tmp_path / "cached" / "items" / f"{stem}.parquet"),
            vectors(tmp_path / "uncached" / "items" / f"{stem}.parquet"),
            atol=1e-5,
        )


def test_adding_ten_rows_embeds_only_those_rows(tmp_path, tiny):
    classification(tmp_path / "public", "items", 20)
    first = run(tmp_path, tiny).run_metrics(cache_enabled=True)
    assert first["cache"] == {"enabled": True, "hits": 0, "misses": 40, "counted": "distinct items (content), not rows"}
    shutil.rmtree(tmp_path / "public" / "items")
    classification(tmp_path / "public", "items", 30)  # the same 20 rows (now split differently) and 10 new ones
    files = run(tmp_path, tiny).run_metrics(cache_enabled=True)["files"]
    for stem in ("photo.parquet", "text.parquet"):
        assert files[stem]["cache_hits"] == 20 and files[stem]["cache_misses"] == 10 and files[stem]["rows"] == 30


def test_same_image_in_another_task_is_not_embedded_again(tmp_path, tiny):
    classification(tmp_path / "public", "items", 8)
    run(tmp_path, tiny)
    make_release(
        tmp_path / "public",
        "pairs",
        {"left": [record(i) for i in range(8)], "right": [record(i) for i in range(4)]},
        task_type="matching",
    )
    stats = run(tmp_path, tiny, task="pairs").run_metrics(cache_enabled=True)["files"]["photo.parquet"]
    assert (stats["rows"], stats["distinct_items"], stats["cache_hits"], stats["cache_misses"]) == (12, 8, 8, 0)
    table = pq.read_table(tmp_path / "out" / "pairs" / "photo.parquet")
    assert table.column("table").to_pylist() == ["left"] * 8 + ["right"] * 4  # ids repeat between left and right
    v = vectors(tmp_path / "out" / "pairs" / "photo.parquet")
    np.testing.assert_array_equal(v[:4], v[8:])


def test_same_inputs_give_the_same_vectors(tmp_path, tiny):
    classification(tmp_path / "public", "items", 11)
    run(tmp_path, tiny, out="a", cache=False)
    run(tmp_path, tiny, out="b", cache=False)
    for stem in ("photo", "text"):
        assert (tmp_path / "a" / "items" / f"{stem}.parquet").read_bytes() == (
            tmp_path / "b" / "items" / f"{stem}.parquet"
        ).read_bytes()


def test_freshly_loaded_model_gives_the_same_vectors(tmp_path, tiny):
    """The stage's own loading path (no encoder passed) and a second process-like load agree."""
    identity, _ = tiny
    classification(tmp_path / "public", "items", 6)
    run(tmp_path, tiny, out="given", cache=False)
    embed_task(
        "items", tmp_path / "public", tmp_path / "loaded", embed_params(), identity, cache_root=None, progress=False
    )
    for stem in ("photo", "text"):
        np.testing.assert_allclose(
            vectors(tmp_path / "given" / "items" / f"{stem}.parquet"),
            vectors(tmp_path / "loaded" / "items" / f"{stem}.parquet"),
            atol=1e-6,
        )


def test_decoding_in_worker_processes_gives_the_same_vectors(tmp_path, tiny):
    classification(tmp_path / "public", "items", 10)
    run(tmp_path, tiny, out="inline", cache=False)
    run(tmp_path, tiny, out="workers", cache=False, params=embed_params(workers=2))
    assert (tmp_path / "inline" / "items" / "photo.parquet").read_bytes() == (
        tmp_path / "workers" / "items" / "photo.parquet"
    ).read_bytes()


def broken_release(tmp_path):
    folder = classification(tmp_path / "public", "items", 12)
    table = pq.read_table(folder / "train.parquet").to_pylist()
    (folder / table[0]["photo"]).write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")  # corrupt
    (folder / table[1]["photo"]).unlink()  # missing file
    table[2]["photo"] = None  # no image given: missing, not failed
    pq.write_table(
        pa.Table.from_pylist(table, schema=pq.read_schema(folder / "train.parquet")), folder / "train.parquet"
    )
    return table


def test_corrupt_and_missing_images_get_zero_vectors_and_are_recorded(tmp_path, tiny):
    rows = broken_release(tmp_path)
    run(tmp_path, tiny, params=embed_params(max_failed_share=0.2))
    table = pq.read_table(tmp_path / "out" / "items" / "photo.parquet")
    by_id = {
        i: (m, v)
        for i, m, v in zip(
            table.column("id").to_pylist(),
            table.column("missing").to_pylist(),
            vectors(tmp_path / "out" / "items" / "photo.parquet"),
        )
    }
    for r in rows[:3]:
        missing, vector = by_id[r["id"]]
        assert missing and not vector.any()
    assert sum(m for m, _ in by_id.values()) == 3
    m = meta(tmp_path)
    failed = {f["id"]: f for f in m["failed"]}
    assert set(failed) == {rows[0]["id"], rows[1]["id"]} and m["n_failed"] == 2
    assert (
        "not a readable image" in failed[rows[0]["id"]]["reason"]
        and failed[rows[1]["id"]]["reason"] == "file not found"
    )
    assert (
        failed[rows[0]["id"]]["path"] == rows[0]["photo"]
        and failed[rows[0]["id"]]["table"] == "train"
        and failed[rows[0]["id"]]["column"] == "photo"
    )
    photo = m["files"]["photo.parquet"]
    assert (photo["rows"], photo["with_value"], photo["missing"], photo["failed"]) == (12, 11, 3, 2)


def test_too_many_failed_images_stop_the_stage_with_the_fix(tmp_path, tiny):
    rows = broken_release(tmp_path)
    run(tmp_path, tiny, params=embed_params(max_failed_share=0.5), out="before")
    with pytest.raises(InputError) as err:
        run(tmp_path, tiny, params=embed_params(max_failed_share=0.1), out="before")
    message = str(err.value)
    assert (
        "2 of 11 images" in message
        and rows[0]["id"] in message
        and "embed.max_failed_share" in message
        and "Fix:" in message
    )
    assert (tmp_path / "before" / "items" / "photo.parquet").is_file()  # the previous output is left as it was


def test_text_columns_and_template_can_be_chosen_per_task(tmp_path, tiny):
    classification(tmp_path / "public", "items", 5)
    params = embed_params(text={"items": TextChoice(columns=["title", "colour", "price"])})
    run(tmp_path, tiny, params=params)
    text = meta(tmp_path)["files"]["text.parquet"]
    assert (
        text["columns"] == ["title", "colour", "price"]
        and text["template"] is None
        and text["template_source"] == "params"
    )
    with pytest.raises(InputError, match=r"embed\.text\.items\.columns"):
        run(tmp_path, tiny, params=embed_params(text={"items": TextChoice(columns=["title", "photo"])}))
    with pytest.raises(InputError, match=r"embed\.text\.items\.template"):
        run(tmp_path, tiny, params=embed_params(text={"items": TextChoice(template="{title} by {maker}")}))


def test_text_spec_prefers_params_then_card_then_default():
    card = {
        "features": {"title": "text", "description": "text", "brand": "categorical", "photo": "image"},
        "text_template": "{title}. {description}",
    }
    assert text_spec("t", card, None) == TextSpec(["title", "description"], "{title}. {description}", "card")
    assert text_spec("t", {**card, "text_template": None}, None) == TextSpec(["title", "description"], None, "default")
    assert text_spec("t", card, TextChoice(template="{brand}: {title}")) == TextSpec(
        ["brand", "title"], "{brand}: {title}", "params"
    )
    assert text_spec("t", {"features": {"price": "numeric", "photo": "image"}, "text_template": None}, None) is None
    assert text_spec("t", card, TextChoice(columns=[])) is None  # no text embedding for this task
    with pytest.raises(InputError, match="description"):
        text_spec("t", {**card, "text_template": "{title} {colour}"}, None)


def test_join_text_fills_missing_values_and_marks_empty_rows():
    default = TextSpec(["item_name", "price", "brand"], None, "default")
    assert join_text(default, {"item_name": "Big  Mac", "price": 4.0, "brand": None}) == "item name: Big Mac; price: 4"
    assert join_text(default, {"item_name": None, "price": float("nan"), "brand": " "}) is None
    template = TextSpec(["title", "description"], "{title}. {description}", "card")
    assert join_text(template, {"title": "Mug", "description": None}) == "Mug."
    assert join_text(template, {"title": "Mug", "description": "Blue\nglaze"}) == "Mug. Blue glaze"


def test_cache_roundtrip_compaction_and_damaged_parts(tmp_path):
    cache = EmbeddingCache(tmp_path, "ns", "image")
    rng = np.random.default_rng(0)
    stored = {}
    for part in range(20):  # past CACHE_MAX_PARTS: compacted on the way
        keys = [f"k{part}-{i}" for i in range(3)] + ["shared"]
        vecs = rng.normal(size=(4, 8)).astype(np.float32)
        cache.put(keys, vecs)
        stored.update(dict(zip(keys[:3], vecs[:3])))
    assert len(cache.parts()) <= 17
    got = cache.get(list(stored) + ["absent"], 8)
    assert set(got) == set(stored)
    for key, vec in stored.items():
        np.testing.assert_array_equal(got[key], vec)
    assert "shared" in cache.get(["shared"], 8)
    assert cache.get(["k0-0"], 16) == {}  # another width: not these vectors
    (cache.folder / "part-99999999999999999999-damaged.parquet").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="skipping"):
        assert set(cache.get(list(stored), 8)) == set(stored)


def test_nothing_to_embed_writes_meta_only(tmp_path, tiny):
    folder = classification(tmp_path / "public", "items", 4)
    card = json.loads((folder / "card.json").read_text())
    card["features"] = {"price": "numeric"}
    card["text_template"] = None
    (folder / "card.json").write_text(json.dumps(card))
    run(tmp_path, tiny)
    assert sorted(p.name for p in (tmp_path / "out" / "items").iterdir()) == ["meta.json"]


def test_missing_release_names_the_fix(tmp_path, tiny):
    with pytest.raises(InputError, match="mmtc ingest nothing"):
        run(tmp_path, tiny, task="nothing")
