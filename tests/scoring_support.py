"""Shared helpers of the scoring tests: the corpus release, params, and synthetic submissions
(baselines included: the real ones come from the train stage)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tasks.core.params import EvaluateParams, LeaderboardParams, SubmitParams
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


def write_baseline(
    submissions: Path,
    name: str,
    task: str,
    columns: dict,
    when: str = "2026-11-01T00:00:00Z",
    public: Path = RELEASE / "public",
) -> Path:
    """A baseline submission as the train stage stores it: through submit(), as the organisers,
    under submissions/baseline-<name>/<task>/."""
    import tempfile

    from tasks.submissions.submit import submit
    from tasks.submissions.validate import load_contracts

    with tempfile.TemporaryDirectory() as tmp:
        path = write_predictions(Path(tmp), task, columns)
        result = submit(
            path,
            f"baseline-{name}",
            submissions_root=submissions,
            contracts=load_contracts(public, [task]),
            params=SUBMIT,
            name=name,
            description=f"synthetic baseline for tests ({task})",
            now=utc(when),
            organiser=True,
            submission_id=task,
        )
    return result.folder


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
        write_baseline(
            submissions, name, task, perfect(private, task, flip=int(n * flip_share)), public=private.parent / "public"
        )
