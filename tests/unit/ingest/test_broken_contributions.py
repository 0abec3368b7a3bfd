"""Every broken contribution of the corpus is refused with its exact message, which names the task,
the file, the column and rows where they help, and the fix; nothing is written for it."""

from __future__ import annotations

import json

import pytest

from tasks.core.errors import InputError, InputErrors
from tasks.ingest.stage import ingest_task, validate_task
from tests.conftest import CORPUS

CASES = sorted(p.name for p in (CORPUS / "broken").iterdir() if p.is_dir())


def test_corpus_is_large_enough():
    assert len(CASES) >= 16
    assert sum(case.startswith("image_") for case in CASES) >= 10


@pytest.mark.parametrize("case", CASES)
def test_given_a_broken_contribution_when_ingested_then_refused_with_its_exact_message(case, tmp_path, ingest_params):
    folder = CORPUS / "broken" / case
    expected = json.loads((folder / "expect.json").read_text())
    params = ingest_params.model_copy(update=expected.get("params", {}))
    with pytest.raises((InputError, InputErrors)) as refused:
        ingest_task(folder, tmp_path / "public", tmp_path / "private", params)
    message = str(refused.value)
    assert message == expected["message"]
    errors = refused.value.errors if isinstance(refused.value, InputErrors) else [refused.value]
    for error in errors:
        assert error.task == case and error.file and error.fix
    assert not (tmp_path / "public").exists() or not any((tmp_path / "public").iterdir())
    assert not (tmp_path / "private").exists() or not any((tmp_path / "private").iterdir())
    with pytest.raises((InputError, InputErrors)) as gate:  # `mmtc validate-task` says the same
        validate_task(folder, params)
    assert str(gate.value) == message
