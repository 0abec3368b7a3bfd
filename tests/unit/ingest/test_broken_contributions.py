"""Every broken contribution of the corpus is refused with a message that names the file,
the column and rows where they help, and the fix; nothing is written for it."""

from __future__ import annotations

import json

import pytest

from tasks.core.errors import InputError, InputErrors
from tasks.ingest.stage import ingest_task
from tests.conftest import CORPUS

CASES = sorted(p.name for p in (CORPUS / "broken").iterdir() if p.is_dir())


def test_corpus_is_large_enough():
    assert len(CASES) >= 12


@pytest.mark.parametrize("case", CASES)
def test_refused_with_a_clear_message(case, tmp_path, ingest_params):
    folder = CORPUS / "broken" / case
    expected = json.loads((folder / "expect.json").read_text())["contains"]
    with pytest.raises((InputError, InputErrors)) as refused:
        ingest_task(folder, tmp_path / "public", tmp_path / "private", ingest_params)
    message = str(refused.value)
    for fragment in expected:
        assert fragment in message, f"{case}: {fragment!r} not in:\n{message}"
    assert "Fix:" in message
    assert not (tmp_path / "public" / case).exists()
    assert not (tmp_path / "private" / case).exists()
