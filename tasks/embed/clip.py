"""CLIP through open_clip: which weights are in use, loading exactly those, and fast encoders.

Weights are named, never guessed. `resolve_weights` turns `embed.clip` params into a
`WeightsIdentity`: an open_clip pretrained tag or a local checkpoint, each with the sha256 of
its weights file, or a seeded random init (with the sha256 of the weights it draws). The
resolve_weights stage writes it to data/embeddings/weights.json; the embed stage loads exactly
that and keys its cache by it, so embeddings change only when the weights really change.

Offline, resolution never waits on the network: the local caches are looked at first, the
hub's offline mode is switched on before open_clip (and huggingface_hub) are imported, and an
online attempt is preceded by a short connect probe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sys
import threading
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import numpy as np
from pydantic import BaseModel, ConfigDict

from tasks.core.errors import InputError
from tasks.core.files import sha256_file, write_json
from tasks.core.params import ClipParams

MODEL_CONFIGS = Path(__file__).resolve().parent / "model_configs"
# What open_clip looks for in a hub repo, in its own order of preference.
HF_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
PROBE_TIMEOUT_S = 3.0
WEIGHTS_MEMO = "weights_sha256.json"  # beside the embedding cache: path/size/mtime -> sha256
RANDOM_INIT = "random-init"
TRUTHY = {"1", "true", "yes", "on"}
# One wording whatever kept the weights away (offline, no network, failed download): weights.json
# is a DVC dependency, and the same situation must give the same bytes. Details go to stderr.
NOT_CACHED = "not in the local cache and could not be downloaded (offline or no network)"

_registered = False


class RandomInitWarning(UserWarning):
    """CLIP runs on random weights: its embeddings carry no pretrained knowledge."""


def hub_offline(setting: Literal["auto"] | bool) -> bool:
    """True when the network must not be touched: the param says so, or HF_HUB_OFFLINE does (auto)."""
    if setting == "auto":
        return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in TRUTHY
    return bool(setting)


def open_clip_module(offline: bool = True):
    """open_clip, imported after the hub's offline mode is set, with this project's model configs registered.

    huggingface_hub reads HF_HUB_OFFLINE when it is first imported; open_clip imports it.
    """
    global _registered
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
    import open_clip

    if not _registered:
        open_clip.add_model_config(MODEL_CONFIGS)
        _registered = True
    return open_clip


# --- identity ----------------------------------------------------------------------------


class WeightsIdentity(BaseModel):
    """What data/embeddings/weights.json holds: enough to know the weights and to find them again.

    No machine-specific path is in it, so the same weights give the same file everywhere.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())
    model: str
    config_sha256: str  # of the open_clip model config (architecture)
    kind: Literal["open_clip-tag", "local-file", "random-init"]
    pretrained: str | None  # as embed.clip.pretrained asked
    sha256: str  # of the weights file; random-init: of the seeded state dict
    file_name: str | None = None
    source: str | None = None  # tags: the hub repo or URL the file comes from
    seed: int | None = None
    quick_gelu: bool = False
    embed_dim: int
    preprocess: dict[str, Any]
    open_clip_version: str
    torch_version: str | None = None  # random-init only: the init draws on torch's generator
    reason: str | None = None  # random-init only: why

    @property
    def random_init(self) -> bool:
        return self.kind == RANDOM_INIT

    @property
    def cache_key(self) -> str:
        """Everything that decides the vectors (the reason text does not)."""
        data = self.model_dump(mode="json", exclude={"reason"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def label(self) -> str:
        if self.random_init:
            return f"{self.model} RANDOM-INIT (seed {self.seed}; {self.reason})"
        return f"{self.model} {self.pretrained} (sha256 {self.sha256[:12]})"


def read_identity(path: Path) -> WeightsIdentity:
    path = Path(path)
    if not path.is_file():
        raise InputError(
            problem=f"{path} not found: the weights in use are not resolved yet",
            fix="run `mmtc resolve-weights` first (`dvc repro` does)",
            file=str(path),
        )
    try:
        return WeightsIdentity.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(
            problem=f"{path} is not a weights identity ({str(exc).splitlines()[0]})",
            fix="run `mmtc resolve-weights` to rewrite it",
            file=str(path),
        ) from None


def write_identity(identity: WeightsIdentity, path: Path) -> None:
    write_json(path, identity.model_dump(mode="json"))


def check_matches_params(
    identity: WeightsIdentity, clip: ClipParams, path: Path | str = "data/embeddings/weights.json"
) -> None:
    """The embed stage refuses a weights.json resolved for other params (a stale file)."""
    asked = (clip.model, clip.pretrained)
    models = (clip.model, clip.random_init_model) if identity.random_init else (clip.model,)
    if (
        identity.model not in models
        or identity.pretrained != clip.pretrained
        or (identity.random_init and identity.seed != clip.seed)
    ):
        raise InputError(
            problem=f"{path} was resolved for {identity.model} / {identity.pretrained} but params ask for {' or '.join(m for m in models if m)} / {asked[1]}",
            fix="run `mmtc resolve-weights` (`dvc repro` runs it before embedding)",
            file=str(path),
        )


# --- resolution --------------------------------------------------------------------------


def resolve_weights(clip: ClipParams, memo_dir: Path | None = None) -> WeightsIdentity:
    """Decide which weights are in use; quick offline. Raises InputError for a typo or, with
    `if_unavailable: fail`, for weights that cannot be had; warns loudly on a random init."""
    offline = hub_offline(clip.offline)
    oc = open_clip_module(offline)
    cfg = model_config(oc, clip.model)
    base = _base_identity(oc, clip.model, cfg)
    if clip.pretrained is None:
        return _random_init(
            oc, clip, cfg, base, "embed.clip.pretrained is null (random init asked for)", memo_dir, warn=False
        )
    tag_cfg = oc.pretrained.get_pretrained_cfg(clip.model, clip.pretrained)
    path: Path | None
    source: str | None
    reason: str | None
    if tag_cfg:
        path, source, reason = _locate_tag(oc, tag_cfg, clip, offline)
        kind = "open_clip-tag"
    elif _looks_like_path(clip.pretrained):
        candidate = Path(clip.pretrained).expanduser()
        path, source, reason = (
            (candidate, None, None) if candidate.is_file() else (None, None, f"no checkpoint file at {candidate}")
        )
        kind = "local-file"
    else:
        tags = oc.pretrained.list_pretrained_tags_by_model(clip.model)
        raise InputError(
            problem=f"embed.clip.pretrained '{clip.pretrained}' is neither an open_clip tag of {clip.model} nor a checkpoint path",
            fix=f"use one of the tags {', '.join(tags) or '(none for this model)'}, a path to a checkpoint file, or null for a random init",
            file="params.yaml",
            column="embed.clip.pretrained",
        )
    if path is None:
        return _unavailable(oc, clip, cfg, base, reason or "not found", memo_dir)
    return WeightsIdentity(
        **base,
        kind=kind,
        pretrained=clip.pretrained,
        sha256=memo_sha256(Path(path), memo_dir),
        file_name=Path(path).name,
        source=source,
        quick_gelu=bool(tag_cfg.get("quick_gelu", False) or cfg.get("quick_gelu", False)),
        preprocess=_preprocess(oc, cfg, tag_cfg),
    )


def resolve_weights_memoized(clip: ClipParams, memo_dir: Path | None) -> WeightsIdentity:
    """resolve_weights, answered from the memo when nothing it depends on changed.

    The stage runs on every `dvc repro`, and importing torch and open_clip costs seconds; the
    memo is keyed by the params, the package versions, this project's model configs and what
    the weight caches hold, all readable without that import. A result that may change with
    the network (online, weights not yet local) is never memoized.
    """
    key = _resolution_key(clip)
    memo = _read_memo(memo_dir)
    known = memo.get(key)
    if known is not None:
        identity = WeightsIdentity.model_validate(known)
        if identity.random_init and clip.pretrained is not None:
            warn_random_init(clip, identity.reason or "")
        return identity
    identity = resolve_weights(clip, memo_dir)
    may_change_online = identity.random_init and clip.pretrained is not None and not hub_offline(clip.offline)
    if not may_change_online:
        _update_memo(memo_dir, key, identity.model_dump(mode="json"))
    return identity


def _resolution_key(clip: ClipParams) -> str:
    from importlib.metadata import version

    parts: dict[str, Any] = {
        "params": clip.model_dump(mode="json"),
        "offline": hub_offline(clip.offline),
        "versions": [version("open_clip_torch"), version("torch"), version("huggingface_hub")],
        "configs": sorted((f.name, sha256_file(f)) for f in MODEL_CONFIGS.glob("*.json")),
    }
    if clip.pretrained is not None and _looks_like_path(clip.pretrained):
        parts["file"] = _stat(Path(clip.pretrained).expanduser())
    elif clip.pretrained is not None:
        parts["caches"] = [_listing(Path(d).expanduser()) for d in _weight_caches(clip)]
    return "resolved:" + hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _weight_caches(clip: ClipParams) -> list[str]:
    """Where a tag's weights may appear: embed.clip.weights_dir, or the Hugging Face hub cache; and open_clip's URL cache."""
    if clip.weights_dir:
        return [clip.weights_dir]
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.expanduser("~/.cache/huggingface"), "hub"
    )
    return [hub, "~/.cache/clip"]


def _stat(path: Path) -> list | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def _listing(root: Path) -> list:
    """Every file name under root with its size and time (a cache of a few entries: cheap)."""
    if not root.is_dir():
        return []
    return sorted([str(p.relative_to(root)), *(_stat(p) or [])[1:]] for p in root.rglob("*") if not p.is_dir())


def model_config(oc, name: str) -> dict:
    cfg = oc.get_model_config(name)
    if cfg is None:
        known = oc.list_models()
        close = [m for m in known if name.lower().split("-")[0] in m.lower()][:8] or known[:8]
        raise InputError(
            problem=f"embed.clip.model '{name}' is not an open_clip model config",
            fix=f"use one of open_clip.list_models() (e.g. {', '.join(close)}) or add a JSON config to tasks/model_configs/",
            file="params.yaml",
            column="embed.clip.model",
        )
    return cfg


def _base_identity(oc, name: str, cfg: dict) -> dict:
    return {
        "model": name,
        "config_sha256": hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest(),
        "embed_dim": int(cfg["embed_dim"]),
        "open_clip_version": oc.__version__,
    }


def _preprocess(oc, cfg: dict, tag_cfg: dict) -> dict:
    """The image preprocessing the weights were trained with (the tag's, else open_clip's defaults)."""
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    merged = merge_preprocess_dict(asdict(PreprocessCfg()), tag_cfg or {})
    merged["size"] = cfg["vision_cfg"].get("image_size", merged["size"])
    return json.loads(json.dumps(merged))  # tuples -> lists, as the JSON file will hold them


def _looks_like_path(value: str) -> bool:
    return (
        "/" in value
        or os.sep in value
        or value.startswith((".", "~"))
        or Path(value).suffix in {".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".npz"}
    )


def _locate_tag(oc, tag_cfg: dict, clip: ClipParams, offline: bool) -> tuple[Path | None, str, str | None]:
    """(file, source, None) when the tag's weights are cached or downloaded; (None, source, reason) otherwise."""
    hub, url = tag_cfg.get("hf_hub") or "", tag_cfg.get("url") or ""
    if hub:
        repo, filename = os.path.split(hub)
        found = _hub_cached(repo, filename, clip.weights_dir)
        source, host = f"hf-hub:{repo}", "huggingface.co"
    else:
        target = Path(clip.weights_dir or os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        found = target if target.is_file() else None
        source, host = url, urlparse(url).hostname or ""
    if found is not None:
        return Path(found), source, None
    if offline:
        print(
            f"CLIP weights: {source} is not cached and the network is off (HF_HUB_OFFLINE=1 or embed.clip.offline: true)",
            file=sys.stderr,
        )
        return None, source, NOT_CACHED
    if not _reachable(host):
        print(f"CLIP weights: {source} is not cached and {host} is unreachable", file=sys.stderr)
        return None, source, NOT_CACHED
    try:
        path = oc.pretrained.download_pretrained(tag_cfg, cache_dir=clip.weights_dir)
    except Exception as exc:  # any download failure means: unavailable
        print(
            f"CLIP weights: downloading {source} failed ({type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''})",
            file=sys.stderr,
        )
        return None, source, NOT_CACHED
    return (Path(path), source, None) if path else (None, source, NOT_CACHED)


def _hub_cached(repo: str, filename: str, cache_dir: str | None) -> Path | None:
    """The cached file open_clip would load for this hub entry, without any network call."""
    from huggingface_hub import try_to_load_from_cache

    if filename:
        names = [filename[:-4] + ".safetensors", filename] if filename.endswith((".bin", ".pth")) else [filename]
    else:
        names = list(HF_WEIGHT_FILES)
    for name in names:
        found = try_to_load_from_cache(repo, name, cache_dir=cache_dir)
        if isinstance(found, str) and os.path.isfile(found):
            return Path(found)
    return None


def _reachable(host: str) -> bool:
    """A TCP connect within PROBE_TIMEOUT_S, name lookup included (a hung resolver ignores socket timeouts)."""
    if not host:
        return False
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, 443), timeout=PROBE_TIMEOUT_S):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(PROBE_TIMEOUT_S)
    return bool(result and result[0])


def _unavailable(oc, clip: ClipParams, cfg: dict, base: dict, reason: str, memo_dir: Path | None) -> WeightsIdentity:
    what = f"{clip.model} / {clip.pretrained}"
    if clip.if_unavailable == "fail":
        raise InputError(
            problem=f"the CLIP weights {what} are not available: {reason}",
            fix=(
                "run `mmtc resolve-weights` once with network access (it downloads them into the Hugging Face cache, "
                "or embed.clip.weights_dir), or point embed.clip.pretrained at a local checkpoint file, "
                "or set embed.clip.if_unavailable: random-init to go on with seeded random weights"
            ),
            file="params.yaml",
            column="embed.clip.pretrained",
        )
    reason = f"{what} unavailable: {reason}"
    if clip.random_init_model and clip.random_init_model != clip.model:
        # random weights carry no pretrained knowledge whatever the architecture: a small one costs far less
        cfg = model_config(oc, clip.random_init_model)
        base = _base_identity(oc, clip.random_init_model, cfg)
        reason += f"; {clip.random_init_model} in its place (embed.clip.random_init_model)"
    return _random_init(oc, clip, cfg, base, reason, memo_dir, warn=True)


def _random_init(
    oc, clip: ClipParams, cfg: dict, base: dict, reason: str, memo_dir: Path | None, warn: bool
) -> WeightsIdentity:
    import torch

    if warn:
        warn_random_init(clip, reason)
    quick_gelu = bool(cfg.get("quick_gelu", False))
    memo_key = f"random-init:{base['config_sha256']}:{clip.seed}:{quick_gelu}:torch-{torch.__version__}:open_clip-{oc.__version__}"
    memo = _read_memo(memo_dir)
    fingerprint = memo.get(memo_key, {}).get("sha256")
    if fingerprint is None:
        fingerprint = state_sha256(build_random_model(oc, base["model"], clip.seed, quick_gelu))
        _update_memo(memo_dir, memo_key, {"sha256": fingerprint})
    return WeightsIdentity(
        **base,
        kind=RANDOM_INIT,
        pretrained=clip.pretrained,
        sha256=fingerprint,
        seed=clip.seed,
        quick_gelu=quick_gelu,
        preprocess=_preprocess(oc, cfg, {}),
        torch_version=torch.__version__,
        reason=reason,
    )


def warn_random_init(clip: ClipParams, reason: str) -> None:
    bar = "!" * 78
    warnings.warn(
        f"\n{bar}\nCLIP WEIGHTS UNAVAILABLE: {reason}.\nUsing RANDOM-INIT weights for {clip.model} (seed {clip.seed}): the embeddings carry no "
        f"pretrained knowledge.\nThis is recorded in data/embeddings/weights.json, which travels into every leaderboard snapshot.\n"
        f"To use real weights, run `mmtc resolve-weights` once with network access, or set embed.clip.pretrained to a checkpoint path.\n{bar}",
        RandomInitWarning,
        stacklevel=3,
    )


def build_random_model(oc, name: str, seed: int, quick_gelu: bool):
    """The seeded random init, always drawn on the CPU (so it is the same whatever the device)."""
    import torch

    quiet = logging.getLogger()  # open_clip logs "initialized randomly" at the root; our own warning says more
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return oc.create_model(
                name,
                pretrained=None,
                load_weights=False,
                device="cpu",
                force_quick_gelu=quick_gelu,
                pretrained_image=False,
                pretrained_text=False,
            )
    finally:
        quiet.setLevel(level)


def state_sha256(model) -> str:
    """One digest of a model's weights: names, dtypes, shapes and bytes, in sorted order."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())  # the buffer itself, no copy
    return h.hexdigest()


def _read_memo(memo_dir: Path | None) -> dict:
    if memo_dir is None:
        return {}
    try:
        return json.loads((Path(memo_dir) / WEIGHTS_MEMO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _update_memo(memo_dir: Path | None, key: str, value: dict) -> None:
    if memo_dir is None:
        return
    memo = _read_memo(memo_dir)
    memo[key] = value
    write_json(Path(memo_dir) / WEIGHTS_MEMO, memo)


def memo_sha256(path: Path, memo_dir: Path | None) -> str:
    """sha256 of a weights file, remembered by (path, size, mtime): hashing 600 MB on every run is not cheap."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"file:{path}"
    entry = _read_memo(memo_dir).get(key, {})
    if entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
        return entry["sha256"]
    digest = sha256_file(path)
    _update_memo(memo_dir, key, {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest})
    return digest


def locate_weights_file(identity: WeightsIdentity, clip: ClipParams) -> Path | None:
    """Find the resolved file again, from the caches only (the embed stage never downloads)."""
    oc = open_clip_module(offline=True)
    if identity.kind == "local-file":
        local = Path(identity.pretrained or "").expanduser()
        return local if local.is_file() else None
    tag_cfg = oc.pretrained.get_pretrained_cfg(identity.model, identity.pretrained or "")
    if not tag_cfg:
        return None
    found, _, _ = _locate_tag(oc, tag_cfg, clip, offline=True)
    return found


# --- loading and encoding -------------------------------------------------------------------


def resolve_device(requested: str) -> str:
    """'cpu' or 'cuda': CUDA when asked for or (auto) when present."""
    import torch

    if requested == "cpu":
        return "cpu"
    has_cuda = torch.cuda.is_available()
    if requested == "cuda" and not has_cuda:
        raise InputError(
            problem="embed.device is cuda but no CUDA device is visible",
            fix="set embed.device: auto (or cpu)",
            file="params.yaml",
            column="embed.device",
        )
    return "cuda" if has_cuda else "cpu"


def compute_label(device: str) -> str:
    """How vectors are computed; part of the cache key, since fp16 and fp32 vectors differ slightly."""
    return "cuda-fp16-autocast" if device == "cuda" else "cpu-fp32"


def load_encoder(
    identity: WeightsIdentity, clip: ClipParams, device: str = "cpu", memo_dir: Path | None = None
) -> ClipEncoder:
    """Exactly the weights `identity` names, on `device`, in eval mode. InputError when they changed
    or vanished since they were resolved."""
    import torch

    oc = open_clip_module(offline=True)
    cfg = model_config(oc, identity.model)
    if _base_identity(oc, identity.model, cfg)["config_sha256"] != identity.config_sha256:
        raise InputError(
            problem=f"the model config of {identity.model} changed since the weights were resolved",
            fix="run `mmtc resolve-weights` (`dvc repro` does)",
            file="data/embeddings/weights.json",
        )
    if identity.random_init:
        # The recorded digest describes the init of the torch and open_clip that drew it; with the same
        # versions the seeded init is the same (the tests check it), so it is not re-hashed here.
        if (identity.torch_version, identity.open_clip_version) != (torch.__version__, oc.__version__):
            raise InputError(
                problem=f"weights.json records a random init drawn with torch {identity.torch_version} / open_clip {identity.open_clip_version}, not the installed ones",
                fix="run `mmtc resolve-weights` (`dvc repro` does)",
                file="data/embeddings/weights.json",
            )
        model = build_random_model(oc, identity.model, identity.seed or 0, identity.quick_gelu)
    else:
        path = locate_weights_file(identity, clip)
        if path is None:
            raise InputError(
                problem=f"the weights file of {identity.label()} is gone since it was resolved",
                fix="run `mmtc resolve-weights` again (`dvc repro` does)",
                file="data/embeddings/weights.json",
            )
        if memo_sha256(path, memo_dir) != identity.sha256:
            raise InputError(
                problem=f"{path} changed since the weights were resolved (sha256 differs)",
                fix="run `mmtc resolve-weights` again (`dvc repro` does)",
                file="data/embeddings/weights.json",
            )
        try:
            model = oc.create_model(
                identity.model,
                pretrained=str(path),
                device="cpu",
                force_quick_gelu=identity.quick_gelu,
                force_preprocess_cfg=identity.preprocess,
                pretrained_image=False,
                pretrained_text=False,
            )
        except Exception as exc:  # a truncated download, or a checkpoint of another architecture
            raise InputError(
                problem=f"the weights file {path} does not load into {identity.model} ({type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''})",
                fix="check that embed.clip.model is the architecture of the checkpoint; delete a damaged download and run `mmtc resolve-weights` again",
                file="params.yaml",
                column="embed.clip.pretrained",
            ) from None
    model = model.to(torch.device(device)).eval()
    from open_clip.transform import PreprocessCfg, image_transform_v2

    pp = dict(identity.preprocess)
    pp["size"] = tuple(pp["size"]) if isinstance(pp["size"], list) else pp["size"]
    pp["mean"], pp["std"] = tuple(pp["mean"]), tuple(pp["std"])
    transform = image_transform_v2(PreprocessCfg(**pp), is_train=False)
    tokenizer = oc.get_tokenizer(identity.model)
    return ClipEncoder(model=model, transform=transform, tokenizer=tokenizer, device=device, identity=identity)


@dataclass
class ClipEncoder:
    """One loaded CLIP model with its preprocessing and tokenizer; outputs are L2-normalised float32."""

    model: Any
    transform: Any
    tokenizer: Any
    device: str
    identity: WeightsIdentity

    @property
    def dims(self) -> int:
        return self.identity.embed_dim

    @property
    def compute(self) -> str:
        return compute_label(self.device)

    def __post_init__(self) -> None:
        self.trimmed_text = supports_trimmed_text(self.model, self.tokenizer)  # once: it inspects the mask

    def _autocast(self):
        import contextlib

        import torch

        return torch.autocast("cuda", dtype=torch.float16) if self.device == "cuda" else contextlib.nullcontext()

    def encode_images(self, pixels):
        """[n, 3, H, W] (any device) -> [n, dims] normalised float32 on the model's device (no sync)."""
        import torch
        import torch.nn.functional as F

        with torch.inference_mode(), self._autocast():
            features = self.model.encode_image(pixels.to(self.device, non_blocking=True))
        return F.normalize(features.float(), dim=-1)

    def tokenize(self, texts: list[str]):
        return self.tokenizer(texts)

    def encode_tokens(self, tokens, trimmed: bool | None = None):
        """[n, context] tokens -> [n, dims] normalised float32 on the device. Trimmed to the batch's
        longest sequence when the text tower allows it (identical features, far less work)."""
        import torch
        import torch.nn.functional as F

        trimmed = self.trimmed_text if trimmed is None else trimmed
        if trimmed:
            tokens = tokens[:, : int(text_lengths(tokens).max())]  # on the host: no device sync per batch
        tokens = tokens.to(self.device, non_blocking=True)
        with torch.inference_mode(), self._autocast():
            features = (
                encode_text_trimmed(self.model, tokens, tokens.shape[1]) if trimmed else self.model.encode_text(tokens)
            )
        return F.normalize(features.float(), dim=-1)


def supports_trimmed_text(model, tokenizer) -> bool:
    """Trimming is exact for open_clip's CLIP text tower under a causal mask, pooled at the end-of-text
    token, with a tokenizer that pads with 0 after it. Custom towers (HF, CoCa) and bidirectional
    masks are left to `encode_text`."""
    import torch
    from open_clip.model import CLIP
    from open_clip.tokenizer import SimpleTokenizer

    if type(model) is not CLIP or not isinstance(tokenizer, SimpleTokenizer):
        return False
    if getattr(model, "text_pool_type", None) not in ("argmax", "eos", "first"):
        return False
    mask = getattr(model, "attn_mask", None)
    if mask is None or mask.dim() != 2:
        return False
    upper = torch.ones(mask.shape, dtype=torch.bool, device=mask.device).triu(1)
    return bool(torch.isneginf(mask[upper]).all() and (mask[~upper] == 0).all())


def encode_text_trimmed(model, tokens, length: int | None = None):
    """open_clip's CLIP.encode_text on the first L positions only, L = the batch's longest sequence.

    Under the causal mask, position i sees positions <= i only, so the padding after every
    sequence's end-of-text token cannot change the pooled feature; dropping it (tokens,
    positional embedding and mask alike) gives the same features for a fraction of the work.
    """
    import torch
    from open_clip.transformer import text_global_pool

    if length is None:
        length = int(text_lengths(tokens).max())
    text = tokens[:, :length]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(text).to(cast_dtype)
    x = x + model.positional_embedding[:length].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = text_global_pool(x, text, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    if model.text_projection is not None:
        x = (
            model.text_projection(x)
            if isinstance(model.text_projection, torch.nn.Linear)
            else x @ model.text_projection
        )
    return x


def text_lengths(tokens) -> np.ndarray:
    """Per row: the position after the last non-padding token (what trimming keeps)."""
    import torch

    positions = torch.arange(tokens.shape[1], device=tokens.device)
    return (((tokens != 0) * positions).max(dim=1).values + 1).cpu().numpy()
