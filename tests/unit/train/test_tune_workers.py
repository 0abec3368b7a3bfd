"""Two `mmtc tune-worker` processes share one study through a journal file."""

from __future__ import annotations

import os
import subprocess
import sys

import optuna
import pytest
import yaml

from tasks.train.stage import prepare
from tasks.train.tune import open_storage, open_study
from tests.conftest import ROOT
from tests.synthetic import classification_release
from tests.unit.train.conftest import QUICK_TRAIN

pytestmark = pytest.mark.slow

QUICK = QUICK_TRAIN | {"n_trials": 6, "max_iterations": 30, "default_iterations": 20}


def test_two_workers_share_one_journal_study(tmp_path):
    classification_release(tmp_path)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update(QUICK)
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump(params))
    journal = tmp_path / "optuna" / "journal.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    cmd = [
        sys.executable,
        "-m",
        "tasks.cli",
        "--params",
        str(params_path),
        "tune-worker",
        "toy_items",
        "--storage",
        f"journal:{journal}",
        "--public",
        str(tmp_path / "public"),
        "--embeddings",
        str(tmp_path / "embeddings"),
    ]
    workers = [
        subprocess.Popen(cmd + ["--worker", str(k)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in (1, 2)
    ]
    outputs = [w.communicate(timeout=600) for w in workers]
    for w, (out, err) in zip(workers, outputs):
        assert w.returncode == 0, err
        assert "toy_items: worker" in out

    # the train stage (worker 0) finds the same study: same data, same settings, same name
    from tasks.core.params import TrainParams

    train = TrainParams.model_validate(params["train"])
    _, problem = prepare("toy_items", tmp_path / "public", tmp_path / "embeddings", train)
    study = open_study(problem, train, storage=f"journal:{journal}")
    assert len(optuna.get_all_study_names(open_storage(f"journal:{journal}"))) == 1
    finished = [
        t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    ]
    assert len(finished) >= QUICK["n_trials"]
    assert {t.user_attrs.get("worker") for t in study.trials} == {1, 2}
    # the two workers sampled different points (seed + worker)
    params_seen = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(params_seen)) > 1
