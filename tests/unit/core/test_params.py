"""params.yaml models: the project's params load, and typos are refused."""

from __future__ import annotations

import pytest
import yaml

from tasks.core.errors import InputError
from tasks.core.params import load_params
from tests.conftest import ROOT


def test_project_params_load():
    params = load_params(ROOT / "params.yaml")
    assert params.ingest.test_fraction == pytest.approx(0.3)
    assert set(params.demo.tasks) <= set(params.challenge.tasks) | set(params.demo.tasks)


def test_params_typos_are_refused(tmp_path):
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    data["ingest"]["test_fracton"] = 0.2
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match="test_fracton"):
        load_params(path)
