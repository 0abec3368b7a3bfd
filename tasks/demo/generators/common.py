"""What the demo generators share: seeded randomness, text noise, and writing raw files the
way different teams would (formats, encodings, naming styles)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

KEYBOARD_NEIGHBOURS = {
    "a": "qsz",
    "b": "vghn",
    "c": "xdfv",
    "d": "serfcx",
    "e": "wsdr",
    "f": "drtgvc",
    "g": "ftyhbv",
    "h": "gyujnb",
    "i": "ujko",
    "j": "huikmn",
    "k": "jiolm",
    "l": "kop",
    "m": "njk",
    "n": "bhjm",
    "o": "iklp",
    "p": "ol",
    "q": "wa",
    "r": "edft",
    "s": "awedxz",
    "t": "rfgy",
    "u": "yhji",
    "v": "cfgb",
    "w": "qase",
    "x": "zsdc",
    "y": "tghu",
    "z": "asx",
}


def task_rng(seed: int, task_id: str, stream: str = "") -> np.random.Generator:
    """Independent, reproducible randomness per task (and per purpose within a task)."""
    digest = hashlib.sha256(f"{seed}:{task_id}:{stream}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def typo(word: str, rng: np.random.Generator) -> str:
    """One keyboard slip: drop, double, swap or hit a neighbouring key."""
    if len(word) < 3:
        return word
    i = int(rng.integers(1, len(word) - 1))
    kind = rng.integers(4)
    if kind == 0:
        return word[:i] + word[i + 1 :]
    if kind == 1:
        return word[:i] + word[i] + word[i:]
    if kind == 2:
        return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    c = word[i].lower()
    return word[:i] + (rng.choice(list(KEYBOARD_NEIGHBOURS[c])) if c in KEYBOARD_NEIGHBOURS else c) + word[i + 1 :]


def noisy(text: str, rng: np.random.Generator, typo_rate: float) -> str:
    return " ".join(typo(w, rng) if rng.random() < typo_rate else w for w in text.split())


def unique_ids(n: int, rng: np.random.Generator, prefix: str, digits: int) -> list[str]:
    """Random ids that say nothing about a row's label or position."""
    numbers = rng.choice(10**digits, size=n, replace=False)
    return [f"{prefix}{x:0{digits}d}" for x in numbers]


def pick(rng: np.random.Generator, options, p=None):
    return options[int(rng.choice(len(options), p=p))]


def write_table(df: pd.DataFrame, path: Path, fmt: str, encoding: str = "utf-8") -> None:
    """Write the way a team's export would: CSV with or without BOM, latin-1 TSV, JSON lines, Parquet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(None), path)
    elif fmt == "jsonl":
        with open(path, "w", encoding=encoding, newline="\n") as f:
            for record in df.to_dict(orient="records"):
                clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in record.items()}
                f.write(json.dumps(clean, ensure_ascii=False) + "\n")
    else:
        sep = "\t" if fmt == "tsv" else ","
        df.to_csv(path, sep=sep, index=False, encoding=encoding, lineterminator="\n", na_rep="")


def write_manifest(out: Path, manifest: dict) -> None:
    (out / "task.yaml").write_text(
        yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=100), encoding="utf-8"
    )


def save_picture(out: Path, rel: str, data: bytes) -> None:
    path = out / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
