"""Deployments of the two flows: served from one machine (`mmtc serve`), or registered on a
work pool from prefect.yaml so workers on other machines pick the runs up.

prefect.yaml is generated from params.yaml (`mmtc prefect-yaml`), so the nightly cron and
its time zone have one home: params.yaml. A test fails when the two drift apart.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect import serve
from prefect.schedules import Cron

from flows.nightly import nightly_reevaluation
from flows.pipeline import challenge_pipeline
from tasks.core.params import Params

ON_DEMAND = "on-demand"
NIGHTLY = "nightly"
WORK_POOL = "mmtc"


def runner_deployments(repo: Path, params: Params) -> list:
    path = str(Path(repo).resolve())
    return [
        challenge_pipeline.to_deployment(
            name=ON_DEMAND, parameters={"repo": path}, description="The whole pipeline; DVC reruns what is stale."
        ),
        nightly_reevaluation.to_deployment(
            name=NIGHTLY,
            parameters={"repo": path},
            schedules=[Cron(params.nightly.cron, timezone=params.nightly.timezone)],
            description="Take in new submissions, re-evaluate, snapshot the leaderboard.",
        ),
    ]


def serve_all(repo: Path, params: Params) -> None:
    """Register both deployments on the Prefect API and execute their runs here until stopped."""
    serve(*runner_deployments(repo, params))


def prefect_yaml(params: Params) -> str:
    """The work-pool form of the same deployments. Each worker runs in its own clone of the
    repository (MMTC_REPO) and exchanges data through the DVC remote (orchestration.remote)."""
    doc = {
        "name": "mmtc",
        "prefect-version": "3.8.8",
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $MMTC_REPO }}"}}],
        "deployments": [
            {
                "name": ON_DEMAND,
                "entrypoint": "flows/pipeline.py:challenge_pipeline",
                "description": "The whole pipeline; DVC reruns what is stale.",
                "parameters": {"repo": "."},
                "work_pool": {"name": WORK_POOL},
            },
            {
                "name": NIGHTLY,
                "entrypoint": "flows/nightly.py:nightly_reevaluation",
                "description": "Take in new submissions, re-evaluate, snapshot the leaderboard.",
                "parameters": {"repo": "."},
                "schedules": [{"cron": params.nightly.cron, "timezone": params.nightly.timezone}],
                "work_pool": {"name": WORK_POOL},
            },
        ],
    }
    header = "# Generated from params.yaml by `mmtc prefect-yaml`; edit params.yaml (nightly.cron, nightly.timezone), not this file.\n"
    return header + yaml.safe_dump(doc, sort_keys=False)
