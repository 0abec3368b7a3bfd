"""The train stage under real DVC on a copy of the repository with a small demo and quick tuning: every task
trains, a second run is a no-op, changing train.n_trials reruns the train stages only, and
`dvc metrics show` reads the validation scores."""

from __future__ import annotations

import json

import pytest
import yaml

from tasks.core.schema import SubmissionRecord
from tests.integration.conftest import ALWAYS_RUN, run, stages_run

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(scope="module")
def trained(built_repo):
    repo, first_output = built_repo
    tasks = yaml.safe_load((repo / "params.yaml").read_text())["challenge"]["tasks"]
    return repo, tasks, first_output


def test_every_task_trains_with_its_baselines(trained):
    repo, tasks, output = trained
    ran = stages_run(output)
    for task in tasks:
        assert f"train@{task}" in ran
        assert (repo / "data" / "models" / task / "ensemble.json").is_file()
        assert (repo / "data" / "train_budget" / f"{task}.json").is_file()
        metrics = json.loads((repo / "metrics" / "train" / f"{task}.json").read_text())
        assert metrics["tuning"]["complete"] >= 1
        for team in (
            "baseline-catboost-tuned",
            "baseline-catboost-default",
            "baseline-majority",
            "baseline-no-images",
            "baseline-text-only",
        ):
            record = SubmissionRecord.model_validate_json(
                (repo / "submissions" / team / task / "submission.json").read_text()
            )
            assert record.baseline and record.tasks == [task]


def test_second_run_is_a_no_op(trained):
    repo, _, _ = trained
    again = run(["dvc", "repro"], repo)
    assert stages_run(again.stdout) <= ALWAYS_RUN  # always re-checked; its unchanged output stops there


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
    # the baselines' new predictions are scored and ranked; nothing upstream reruns
    assert (
        {f"train@{t}" for t in tasks} <= ran <= {f"train@{t}" for t in tasks} | ALWAYS_RUN | {"evaluate", "leaderboard"}
    )
    diff = run(["dvc", "metrics", "diff", "--json"], repo).stdout
    assert "metrics/train/" in diff
