"""Shared helpers of the scoring tests: the corpus release, params, and synthetic submissions
(baselines included: the real ones come from the train stage)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tasks.core.files import sha256_file
from tasks.core.params import EvaluateParams, LeaderboardParams, SubmitParams
from tasks.core.schema import SUBMISSION_META, SubmissionRecord
from tests.conftest import CORPUS

RELEASE = CORPUS / "submissions" / "_release"
TASKS = ["shop_kind", "same_item"]
SUBMIT = SubmitParams(max_per_day=5, max_total=100, max_file_mb=50, max_description_chars=500)
EVALUATE = EvaluateParams(threads=2, memory_limit="1GB")
BEST_PUBLIC = LeaderboardParams(policy="best-public")


def copy_release(dest: Path) -> tuple[Path, Path]:
    shutil.copytree(RELEASE, dest)
    return dest / "public", dest / "private"


def hidden(private: Path, task: str) -> pa.Table:
    return pq.read_table(private / task / "test_labels.parquet")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def write_predictions(folder: Path, task: str, columns: dict, fmt: str = "csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table(columns)
    path = folder / f"{task}.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="needed"))
    return path


def perfect(private: Path, task: str, flip: int = 0) -> dict:
    """The hidden labels as predictions, the first `flip` of them wrong."""
    t = hidden(private, task)
    key = t.column_names[0]
    labels = t.column("label").to_pylist()
    if key == "pair_id":
        labels = [1 - v if i < flip else v for i, v in enumerate(labels)]
    else:
        classes = sorted(set(labels))
        labels = [classes[(classes.index(v) + 1) % len(classes)] if i < flip else v for i, v in enumerate(labels)]
    return {key: t.column(key).to_pylist(), "label": labels}


def write_baseline(submissions: Path, name: str, task: str, columns: dict, when: str = "2026-11-01T00:00:00Z") -> Path:
    """A baseline submission as the train stage writes it: submissions/baseline-<name>/<task>/."""
    team = f"baseline-{name}"
    folder = submissions / team / task
    path = write_predictions(folder, task, columns)
    record = SubmissionRecord(
        team=team,
        name=name,
        submission_id=f"{when[:4]}{when[5:7]}{when[8:10]}T000000Z-{sha256_file(path)[:8]}",
        submitted_at=when,
        files={path.name: sha256_file(path)},
        tasks=[task],
        baseline=True,
        description=f"synthetic baseline for tests ({task})",
    )
    (folder / SUBMISSION_META).write_text(json.dumps(record.model_dump(), indent=2, sort_keys=True) + "\n")
    return folder


def build_small_release(root: Path) -> tuple[Path, Path]:
    """The six demo tasks, small (the integration tests' sizes), generated and ingested."""
    from tasks.core.params import load_params
    from tasks.demo.generators import generate_contribution
    from tasks.ingest.stage import ingest_task
    from tests.conftest import ROOT
    from tests.integration.conftest import SMALL_DEMO

    params = load_params(ROOT / "params.yaml")
    for task, options in SMALL_DEMO.items():
        generate_contribution(task, root / "contributions" / task, params.demo.seed, options)
        ingest_task(root / "contributions" / task, root / "public", root / "private", params.ingest)
    return root / "public", root / "private"


def synthetic_baselines(
    submissions: Path, private: Path, tasks: list[str], name: str = "synthetic", flip_share: float = 0.2
) -> None:
    """Baselines as the train stage will write them; here, hidden labels with a share flipped."""
    for task in tasks:
        n = hidden(private, task).num_rows
        write_baseline(submissions, name, task, perfect(private, task, flip=int(n * flip_share)))
