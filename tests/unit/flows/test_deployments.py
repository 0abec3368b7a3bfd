"""Deployments take their schedule from params.yaml, and the committed prefect.yaml agrees."""

from __future__ import annotations

from prefect.client.schemas.schedules import CronSchedule

from flows.deployments import NIGHTLY, ON_DEMAND, prefect_yaml, runner_deployments
from tasks.cli import main
from tasks.core.params import load_params
from tests.conftest import ROOT


def test_committed_prefect_yaml_matches_params():
    assert (ROOT / "prefect.yaml").read_text() == prefect_yaml(load_params(ROOT / "params.yaml"))
    assert (
        main(["--params", str(ROOT / "params.yaml"), "prefect-yaml", "--check", "--out", str(ROOT / "prefect.yaml")])
        == 0
    )


def test_nightly_schedule_comes_from_params():
    params = load_params(ROOT / "params.yaml")
    on_demand, nightly = runner_deployments(ROOT, params)
    assert on_demand.name == ON_DEMAND and not on_demand.schedules
    assert nightly.name == NIGHTLY
    schedule = nightly.schedules[0].schedule
    assert isinstance(schedule, CronSchedule)
    assert schedule.cron == params.nightly.cron and schedule.timezone == params.nightly.timezone
    assert nightly.parameters["repo"] == str(ROOT)
