"""Every hostile submission of tests/corpus/submissions/ is refused with the message it must produce,
and nothing of it reaches the accepted area."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tasks.core.errors import InputError
from tasks.core.schema import REJECTED_DIR, REJECTION_META
from tasks.submissions.submit import submit
from tasks.submissions.validate import load_contracts
from tests.conftest import CORPUS
from tests.scoring_support import RELEASE, SUBMIT, TASKS, utc

CASES = sorted(p for p in (CORPUS / "submissions").iterdir() if p.is_dir() and not p.name.startswith("_"))


def test_the_corpus_is_there():
    assert len(CASES) >= 60


def materialize(case: Path, expect: dict, tmp_path: Path) -> Path:
    """The case's files; those too large to commit are written from their recipe, block by block."""
    if not expect.get("big"):
        return case / "files"
    files = tmp_path / "files"
    if (case / "files").is_dir():
        shutil.copytree(case / "files", files)
    files.mkdir(exist_ok=True)
    for name, recipe in expect["big"].items():
        fill = recipe["fill"].encode()
        with open(files / name, "wb") as f:
            f.write(recipe["prefix"].encode())
            left = recipe["bytes"]
            block = fill * max(1, (1 << 20) // len(fill))
            while left > 0:
                f.write(block[:left])
                left -= len(block[:left])
            f.write(recipe["suffix"].encode())
    return files


@pytest.fixture(scope="module")
def contracts():
    return load_contracts(RELEASE / "public", TASKS)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_hostile_submission_is_refused_with_its_message(case: Path, tmp_path, contracts):
    expect = json.loads((case / "expect.json").read_text())
    params = SUBMIT.model_copy(update={"max_file_mb": expect.get("max_file_mb", SUBMIT.max_file_mb)})
    root = tmp_path / "submissions"
    kwargs = dict(
        submissions_root=root,
        contracts=contracts,
        params=params,
        name=expect.get("name"),
        description=expect.get("description", ""),
        now=utc("2026-11-05T10:00:00Z"),
    )
    files = materialize(case, expect, tmp_path)
    if expect.get("raises"):
        with pytest.raises(InputError) as info:
            submit(files, expect["team"], **kwargs)
        text = str(info.value)
        assert not root.exists() or not any(
            p for p in root.rglob("*") if p.is_file() and p.suffix in (".csv", ".parquet")
        ), "nothing may be stored"
    else:
        result = submit(files, expect["team"], **kwargs)
        assert not result.accepted
        text = "\n".join(str(e) for e in result.errors)
        assert result.folder.parent == root / REJECTED_DIR / expect["team"]
        record = json.loads((result.folder / REJECTION_META).read_text())
        assert record["reasons"] and all(r["fix"] for r in record["reasons"])
        assert not (root / expect["team"]).exists(), "a rejected submission never reaches the accepted area"
    for fragment in expect["messages"]:
        assert fragment in text, f"{case.name}: {fragment!r} not in:\n{text}"
    assert "\x1b" not in text and "\u202e" not in text, "control characters are never echoed raw"
