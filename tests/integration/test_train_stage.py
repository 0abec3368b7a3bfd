"""The train stage under real DVC on a copy of the repository with a small demo: every task
trains, a second run is a no-op, changing train.n_trials reruns the train stages only, and
`dvc metrics show` reads the validation scores."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from tasks.schema import SubmissionRecord
from tests.integration.conftest import copy_repo, run, shrink_params, stages_run
from tests.synthetic import write_embedding

pytestmark = [pytest.mark.slow, pytest.mark.integration]

QUICK_TRAIN = {"train.n_trials": 3, "train.timeout_s": 10, "train.max_iterations": 40, "train.default_iterations": 30, "train.early_stopping_rounds": 10, "train.tpe_startup_trials": 2}


def fake_embeddings(repo, task: str, dim: int = 16) -> None:
    """Contract-conformant embeddings (seeded by record id) where no embed stage exists yet."""
    card = json.loads((repo / "data" / "public" / task / "card.json").read_text())
    tables = ("train", "test") if card["type"] == "classification" else ("left", "right")
    rows = [(t, i) for t in tables for i in pq.read_table(repo / "data" / "public" / task / f"{t}.parquet").column("id").to_pylist()]
    names = (["text"] if "text" in card["features"].values() else []) + [c for c, r in card["features"].items() if r == "image"]
    for name in names:
        vecs = np.stack([np.random.default_rng(int(hashlib.sha256(f"{name}/{t}/{i}".encode()).hexdigest()[:8], 16)).normal(size=dim) for t, i in rows])
        write_embedding(repo / "data" / "embeddings" / task / f"{name}.parquet", rows, vecs / np.linalg.norm(vecs, axis=1, keepdims=True))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    shrink_params(repo, **QUICK_TRAIN)
    tasks = yaml.safe_load((repo / "params.yaml").read_text())["challenge"]["tasks"]
    if "embed" not in yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]:
        run(["dvc", "repro", *[f"ingest@{t}" for t in tasks]], repo)
        for task in tasks:
            fake_embeddings(repo, task)
    first = run(["dvc", "repro"], repo)
    return repo, tasks, first.stdout


def test_every_task_trains_with_its_baselines(trained):
    repo, tasks, output = trained
    ran = stages_run(output)
    for task in tasks:
        assert f"train@{task}" in ran
        assert (repo / "data" / "models" / task / "model.cbm").is_file()
        metrics = json.loads((repo / "metrics" / "train" / f"{task}.json").read_text())
        assert metrics["tuning"]["complete"] >= 1
        for team in ("baseline-catboost-tuned", "baseline-catboost-default", "baseline-majority", "baseline-no-images", "baseline-text-only"):
            record = SubmissionRecord.model_validate_json((repo / "submissions" / team / task / "submission.json").read_text())
            assert record.baseline and record.tasks == [task]


def test_second_run_is_a_no_op(trained):
    repo, _, _ = trained
    again = run(["dvc", "repro"], repo)
    assert stages_run(again.stdout) == set()


def test_metrics_show_reads_the_validation_scores(trained):
    repo, tasks, _ = trained
    shown = run(["dvc", "metrics", "show", "--json"], repo).stdout
    data = json.loads(shown)
    files = next(iter(data.values()))["data"]
    assert {f"metrics/train/{t}.json" for t in tasks} <= set(files)


def test_changing_n_trials_reruns_only_the_train_stages(trained):
    repo, tasks, _ = trained
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["n_trials"] += 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ran = stages_run(run(["dvc", "repro"], repo).stdout)
    assert ran == {f"train@{t}" for t in tasks}
    diff = run(["dvc", "metrics", "diff", "--json"], repo).stdout
    assert "metrics/train/" in diff
