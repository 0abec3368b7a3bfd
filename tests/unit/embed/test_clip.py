"""Weights resolution (tags, local checkpoints, random init, fail), loading exactly the resolved
weights, and the trimmed text encoder against open_clip's own encode_text."""

from __future__ import annotations

import json
import socket

import pytest
import torch

from tasks.core.errors import InputError
from tasks.core.files import sha256_file
from tasks.embed import clip as clipmod
from tasks.embed.clip import (
    RandomInitWarning,
    check_matches_params,
    encode_text_trimmed,
    load_encoder,
    open_clip_module,
    read_identity,
    resolve_weights,
    state_sha256,
    supports_trimmed_text,
    write_identity,
)
from tests.unit.embed.helpers import TINY, tiny_clip

TEXTS = [
    "mug",
    "a red mug!",  # token 0 is '!' in CLIP's vocabulary: trimming must not take it for padding
    "Nordic Line 145 - Rustic Pink, finished by hand. Part of our bestselling collection.",
    "",
    "word " * 120,  # longer than the context: truncated by the tokenizer, EOT at the last position
    "!!! ??? ...",
]


@pytest.fixture(scope="module")
def oc():
    return open_clip_module(offline=True)


@pytest.fixture
def no_network(monkeypatch):
    """Any connection attempt fails the test: offline resolution must not touch the network."""

    def refuse(*args, **kwargs):
        raise AssertionError("resolution tried to reach the network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_project_model_configs_are_registered(oc):
    assert TINY in oc.list_models()
    assert oc.get_model_config(TINY)["embed_dim"] == 32


def test_random_init_on_purpose_records_the_seed_and_the_weights_digest(oc, tmp_path):
    identity = resolve_weights(tiny_clip(seed=3), memo_dir=tmp_path)
    assert identity.kind == "random-init" and identity.random_init and identity.seed == 3
    assert identity.sha256 == state_sha256(clipmod.build_random_model(oc, TINY, 3, False))
    assert identity.torch_version == torch.__version__
    assert "RANDOM-INIT" in identity.label() and "seed 3" in identity.label()
    other = resolve_weights(tiny_clip(seed=4), memo_dir=tmp_path)
    assert other.sha256 != identity.sha256 and other.cache_key != identity.cache_key


def test_unavailable_weights_with_random_init_warn_loudly_and_are_recorded(tmp_path, no_network):
    with pytest.warns(RandomInitWarning, match="RANDOM-INIT"):
        identity = resolve_weights(
            tiny_clip(pretrained=str(tmp_path / "nowhere" / "ckpt.pt"), seed=7), memo_dir=tmp_path
        )
    assert identity.kind == "random-init" and identity.seed == 7
    assert "unavailable" in identity.reason and "no checkpoint file" in identity.reason
    path = tmp_path / "weights.json"
    write_identity(identity, path)
    saved = json.loads(path.read_text())
    assert saved["kind"] == "random-init" and saved["seed"] == 7 and saved["sha256"] == identity.sha256
    assert read_identity(path) == identity


def test_given_unavailable_weights_and_a_random_init_model_then_that_model_is_used_and_named(tmp_path, no_network):
    """The offline demo's case: ViT-B-32's weights cannot be had; the random init uses the smaller config."""
    params = tiny_clip(
        model="ViT-B-32",
        pretrained="laion2b_s34b_b79k",
        weights_dir=str(tmp_path / "empty"),
        random_init_model=TINY,
    )
    with pytest.warns(RandomInitWarning):
        identity = resolve_weights(params, memo_dir=tmp_path)
    assert identity.model == TINY and identity.random_init and identity.embed_dim == 32
    assert "ViT-B-32 / laion2b_s34b_b79k unavailable" in identity.label() and f"{TINY} in its place" in identity.label()
    check_matches_params(identity, params)  # weights.json of the substitute matches the params that asked for it
    assert load_encoder(identity, params).dims == 32
    with pytest.raises(InputError):
        check_matches_params(identity, params.model_copy(update={"random_init_model": None}))
    # asked on purpose (pretrained: null), the random init stays the model asked for
    on_purpose = resolve_weights(tiny_clip(model="mmtc-cpu-small", random_init_model=TINY), memo_dir=tmp_path)
    assert on_purpose.model == "mmtc-cpu-small"


def test_uncached_tag_offline_fails_with_the_fix_and_never_touches_the_network(tmp_path, no_network):
    params = tiny_clip(
        model="ViT-B-32",
        pretrained="laion2b_s34b_b79k",
        if_unavailable="fail",
        offline="auto",
        weights_dir=str(tmp_path / "empty"),
    )
    with pytest.raises(InputError) as err:
        resolve_weights(params, memo_dir=tmp_path)
    message = str(err.value)
    assert "ViT-B-32 / laion2b_s34b_b79k are not available" in message
    assert "Fix:" in message and "mmtc resolve-weights" in message and "if_unavailable: random-init" in message


def test_a_cached_tag_resolves_to_the_cached_file_without_network(tmp_path, no_network, oc):
    """A Hugging Face cache laid out as the hub does, holding the tag's file: found, hashed, never downloaded."""
    repo = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
    snapshot = tmp_path / "hub" / f"models--{repo.replace('/', '--')}" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (tmp_path / "hub" / f"models--{repo.replace('/', '--')}" / "refs").mkdir()
    (tmp_path / "hub" / f"models--{repo.replace('/', '--')}" / "refs" / "main").write_text("abc123")
    weights = snapshot / "open_clip_model.safetensors"
    weights.write_bytes(b"not really weights")
    identity = resolve_weights(
        tiny_clip(
            model="ViT-B-32", pretrained="laion2b_s34b_b79k", if_unavailable="fail", weights_dir=str(tmp_path / "hub")
        ),
        memo_dir=tmp_path,
    )
    assert identity.kind == "open_clip-tag" and identity.file_name == "open_clip_model.safetensors"
    assert identity.sha256 == sha256_file(weights) and identity.source == f"hf-hub:{repo}"
    assert identity.preprocess["size"] == 224 and identity.preprocess["interpolation"] == "bicubic"


def test_unknown_tag_and_unknown_model_are_refused_with_choices(tmp_path):
    with pytest.raises(InputError, match="laion2b_s34b_b79k"):
        resolve_weights(tiny_clip(model="ViT-B-32", pretrained="laion2b_typo"), memo_dir=tmp_path)
    with pytest.raises(InputError, match="not an open_clip model config"):
        resolve_weights(tiny_clip(model="ViT-Q-99"), memo_dir=tmp_path)


def test_local_checkpoint_is_identified_by_its_sha256_and_loaded_exactly(oc, tmp_path):
    trained = clipmod.build_random_model(oc, TINY, 123, False)
    path = tmp_path / "ckpt" / "tiny.pt"
    path.parent.mkdir()
    torch.save(trained.state_dict(), path)
    params = tiny_clip(pretrained=str(path), if_unavailable="fail")
    identity = resolve_weights(params, memo_dir=tmp_path)
    assert identity.kind == "local-file" and identity.sha256 == sha256_file(path) and identity.file_name == "tiny.pt"
    encoder = load_encoder(identity, params, "cpu", memo_dir=tmp_path)
    assert state_sha256(encoder.model) == state_sha256(trained)
    assert not encoder.model.training
    # the file changes after resolution: refused, with the fix
    torch.save(clipmod.build_random_model(oc, TINY, 124, False).state_dict(), path)
    with pytest.raises(InputError, match="changed since the weights were resolved"):
        load_encoder(identity, params, "cpu", memo_dir=None)


def test_random_init_loads_the_same_weights_it_recorded(tmp_path):
    params = tiny_clip(seed=5)
    identity = resolve_weights(params, memo_dir=tmp_path)
    encoder = load_encoder(identity, params, "cpu")
    assert state_sha256(encoder.model) == identity.sha256


def test_a_stale_weights_file_is_refused(tmp_path):
    identity = resolve_weights(tiny_clip(), memo_dir=tmp_path)
    with pytest.raises(InputError, match="resolve-weights"):
        check_matches_params(identity, tiny_clip(model="ViT-B-32", pretrained="laion2b_s34b_b79k"))
    with pytest.raises(InputError, match="resolve-weights"):
        check_matches_params(identity, tiny_clip(seed=1))
    check_matches_params(identity, tiny_clip())
    with pytest.raises(InputError, match="resolve-weights"):
        read_identity(tmp_path / "absent.json")


def test_trimmed_text_encoder_equals_encode_text(oc):
    tokenizer = oc.get_tokenizer(TINY)
    tokens = tokenizer(TEXTS)
    for seed in (0, 1):
        model = clipmod.build_random_model(oc, TINY, seed, False).eval()
        assert supports_trimmed_text(model, tokenizer)
        with torch.inference_mode():
            full = model.encode_text(tokens)
            trimmed = encode_text_trimmed(model, tokens)
            short = encode_text_trimmed(model, tokens[:1])  # a batch of one short text: trimmed to 3 positions
        torch.testing.assert_close(trimmed, full, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(short, full[:1], rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_trimmed_text_encoder_equals_encode_text_on_vit_b_32(oc):
    tokens = oc.get_tokenizer("ViT-B-32")(TEXTS)
    model = clipmod.build_random_model(oc, "ViT-B-32", 0, False).eval()
    with torch.inference_mode():
        torch.testing.assert_close(encode_text_trimmed(model, tokens), model.encode_text(tokens), rtol=1e-4, atol=1e-5)


def test_bidirectional_text_tower_falls_back_to_encode_text(oc, tmp_path):
    cfg = oc.get_model_config(TINY)
    cfg["text_cfg"]["no_causal_mask"] = True
    (tmp_path / "mmtc-tiny-bidir.json").write_text(json.dumps(cfg))
    oc.add_model_config(tmp_path / "mmtc-tiny-bidir.json")
    params = tiny_clip(model="mmtc-tiny-bidir")
    encoder = load_encoder(resolve_weights(params, memo_dir=tmp_path), params, "cpu")
    assert not encoder.trimmed_text
    tokens = encoder.tokenize(TEXTS)
    with torch.inference_mode():
        expected = torch.nn.functional.normalize(encoder.model.encode_text(tokens), dim=-1)
    torch.testing.assert_close(encoder.encode_tokens(tokens), expected)


def test_cuda_asked_without_cuda_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match="embed.device"):
        clipmod.resolve_device("cuda")
    assert clipmod.resolve_device("auto") == "cpu"
    assert clipmod.compute_label("cuda") != clipmod.compute_label("cpu")


def test_encoder_text_path_trims_on_the_host_and_matches_encode_text(tmp_path):
    params = tiny_clip(seed=2)
    encoder = load_encoder(resolve_weights(params, memo_dir=tmp_path), params, "cpu")
    assert encoder.trimmed_text
    tokens = encoder.tokenize(TEXTS[:2] + TEXTS[5:])  # short texts only: the batch runs on a few positions
    with torch.inference_mode():
        expected = torch.nn.functional.normalize(encoder.model.encode_text(tokens), dim=-1)
    torch.testing.assert_close(encoder.encode_tokens(tokens), expected, rtol=1e-5, atol=1e-5)


def test_decode_workers_auto_depends_on_the_device():
    from tasks.embed.stage import decode_workers

    assert decode_workers("auto", "cpu") == 1
    assert decode_workers("auto", "cuda") >= 1
    assert decode_workers(3, "cuda") == 3 and decode_workers(0, "cpu") == 0


def test_a_checkpoint_of_another_architecture_is_refused_with_the_fix(oc, tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"visual.proj": torch.zeros(3, 3)}, path)
    params = tiny_clip(pretrained=str(path), if_unavailable="fail")
    identity = resolve_weights(params, memo_dir=tmp_path)
    with pytest.raises(InputError, match="does not load into mmtc-tiny-test"):
        load_encoder(identity, params, "cpu", memo_dir=tmp_path)


def test_online_resolution_gives_up_quickly_when_the_hub_does_not_answer(tmp_path, monkeypatch):
    """offline: auto without HF_HUB_OFFLINE: a hanging connection is abandoned after the probe's timeout."""
    import threading

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(clipmod, "PROBE_TIMEOUT_S", 0.2)
    release = threading.Event()

    def hang(*args, **kwargs):
        release.wait(30)
        raise OSError("no answer")

    monkeypatch.setattr(socket, "create_connection", hang)
    params = tiny_clip(
        model="ViT-B-32",
        pretrained="laion2b_s34b_b79k",
        if_unavailable="fail",
        offline="auto",
        weights_dir=str(tmp_path / "empty"),
    )
    try:
        with pytest.raises(InputError, match="could not be downloaded"):
            resolve_weights(params, memo_dir=tmp_path)
    finally:
        release.set()


def test_memoized_resolution_skips_the_work_until_a_cache_changes(tmp_path, no_network, monkeypatch):
    """resolve_weights runs on every `dvc repro`: the second time it answers from the memo, and a
    weights file appearing in the cache, or a changed checkpoint, makes it resolve again."""
    calls = []
    real = clipmod.resolve_weights
    monkeypatch.setattr(
        clipmod, "resolve_weights", lambda clip, memo_dir=None: calls.append(clip) or real(clip, memo_dir)
    )
    hub = tmp_path / "hub"
    tag = tiny_clip(
        model="ViT-B-32", pretrained="laion2b_s34b_b79k", if_unavailable="random-init", weights_dir=str(hub)
    )
    with pytest.warns(RandomInitWarning):
        first = clipmod.resolve_weights_memoized(tag, tmp_path / "memo")
    with pytest.warns(RandomInitWarning):  # still loud when answered from the memo
        assert clipmod.resolve_weights_memoized(tag, tmp_path / "memo") == first
    assert len(calls) == 1 and first.random_init
    # the tag's weights arrive in the cache: resolved again, now to the file
    snapshot = hub / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc")
    (snapshot / "open_clip_model.safetensors").write_bytes(b"weights")
    assert clipmod.resolve_weights_memoized(tag, tmp_path / "memo").kind == "open_clip-tag"
    assert len(calls) == 2
    # a local checkpoint rewritten in place: resolved again, with the new digest
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(b"one")
    local = tiny_clip(pretrained=str(ckpt), if_unavailable="fail")
    assert clipmod.resolve_weights_memoized(local, tmp_path / "memo").sha256 == sha256_file(ckpt)
    ckpt.write_bytes(b"two, longer")
    assert clipmod.resolve_weights_memoized(local, tmp_path / "memo").sha256 == sha256_file(ckpt)
    assert len(calls) == 4


def test_unavailable_weights_online_are_never_memoized(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(clipmod, "_reachable", lambda host: False)
    calls = []
    real = clipmod.resolve_weights
    monkeypatch.setattr(
        clipmod, "resolve_weights", lambda clip, memo_dir=None: calls.append(clip) or real(clip, memo_dir)
    )
    params = tiny_clip(
        model="ViT-B-32", pretrained="laion2b_s34b_b79k", offline=False, weights_dir=str(tmp_path / "hub")
    )
    for _ in range(2):
        with pytest.warns(RandomInitWarning):
            clipmod.resolve_weights_memoized(params, tmp_path / "memo")
    assert len(calls) == 2  # the network may be back next time
