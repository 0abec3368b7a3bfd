"""`mmtc resolve-weights` and `mmtc embed`: params read once, identity written, errors as exit 2."""

from __future__ import annotations

import json

import yaml

from tasks.cli import COMMANDS, main
from tests.conftest import ROOT
from tests.unit.embed.helpers import TINY, classification


def tiny_params(tmp_path, **clip) -> str:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["embed"]["clip"].update({"model": TINY, "pretrained": None, **clip})
    params["embed"]["device"] = "cpu"
    params["embed"]["workers"] = 0
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return str(path)


def test_resolve_weights_then_embed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the cache folder in params is relative to the project root
    params = tiny_params(tmp_path)
    classification(tmp_path / "data" / "public", "items", 6)
    assert main(["--params", params, "resolve-weights"]) == 0
    identity = json.loads((tmp_path / "data" / "embeddings" / "weights.json").read_text())
    assert identity["model"] == TINY and identity["kind"] == "random-init"
    assert main(["--params", params, "embed", "items"]) == 0
    out = capsys.readouterr().out
    assert "embedded items" in out and "RANDOM-INIT" in out
    assert (tmp_path / "data" / "embeddings" / "items" / "text.parquet").is_file()
    assert (tmp_path / ".mmtc_cache" / "embeddings").is_dir()
    assert main(["--params", params, "embed", "items", "--no-cache"]) == 0


def test_embed_without_resolved_weights_or_with_stale_ones_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    params = tiny_params(tmp_path)
    classification(tmp_path / "data" / "public", "items", 3)
    assert main(["--params", params, "embed", "items"]) == 2
    assert "mmtc resolve-weights" in capsys.readouterr().err
    assert main(["--params", params, "resolve-weights"]) == 0
    assert main(["--params", tiny_params(tmp_path, seed=9), "embed", "items"]) == 2
    assert "resolve-weights" in capsys.readouterr().err


def test_unavailable_weights_with_fail_exit_2_with_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    params = tiny_params(tmp_path, pretrained="checkpoints/absent.pt", if_unavailable="fail")
    assert main(["--params", params, "resolve-weights"]) == 2
    err = capsys.readouterr().err
    assert (
        "are not available" in err
        and "Fix:" in err
        and not (tmp_path / "data" / "embeddings" / "weights.json").exists()
    )


def test_embed_subcommands_exist():
    assert {"resolve-weights", "embed"} <= set(COMMANDS)
