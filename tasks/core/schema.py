"""The data contracts between stages, in one place: roles, task types, release layout.

Every stage reads file and column names from here, so a rename is one edit.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict


class TaskType(str, Enum):
    classification = "classification"
    matching = "matching"


class Role(str, Enum):
    """What a raw column means. Record files use id/label/features; pair files use the pair roles."""

    id = "id"
    label = "label"
    text = "text"
    numeric = "numeric"
    categorical = "categorical"
    image = "image"
    ignore = "ignore"
    left_id = "left_id"
    right_id = "right_id"


FEATURE_ROLES = (Role.text, Role.numeric, Role.categorical, Role.image)
PAIR_ROLES = (Role.left_id, Role.right_id, Role.label)

# The metrics, and which a task may rank by, are the registry's: tasks/core/metrics.py.

# Standard column names in the release.
ID = "id"
LABEL = "label"
PAIR_ID = "pair_id"
LEFT_ID = "left_id"
RIGHT_ID = "right_id"
SPLIT = "split"  # in hidden labels: which part of the test set a row scores in
PUBLIC, PRIVATE = "public", "private"
SCORE = "score"  # optional confidence in a matching submission

# Which raw files a manifest may name, per task type. A given split replaces the single
# data (or pairs) file by a train and a test file.
RECORD_FILES = {
    TaskType.classification: (("data",), ("train", "test")),
    TaskType.matching: (("left", "right"),),
}
PAIR_FILES = (("pairs",), ("train_pairs", "test_pairs"))

# The release: data/public/<task>/...
CARD = "card.json"
IMAGES_DIR = "images"
CLASSIFICATION_TABLES = ("train", "test")
MATCHING_TABLES = ("left", "right", "train_pairs", "test_pairs")
HIDDEN_LABELS = "test_labels.parquet"  # data/private/<task>/
INGEST_REPORT = "ingest_report.json"  # data/private/<task>/: what organisers should review (may name hidden classes)


def release_tables(task_type: TaskType) -> tuple[str, ...]:
    return CLASSIFICATION_TABLES if task_type is TaskType.classification else MATCHING_TABLES


def release_dir(public_root: Path, task_id: str) -> Path:
    return Path(public_root) / task_id


def hidden_labels_path(private_root: Path, task_id: str) -> Path:
    return Path(private_root) / task_id / HIDDEN_LABELS


# Where the stages read and write by default (relative to the repository root).
CONTRIBUTIONS_ROOT = Path("contributions")  # contributions/<task>/: task.yaml and raw files
PUBLIC_ROOT = Path("data/public")  # the release
PRIVATE_ROOT = Path("data/private")  # the hidden labels

# --- stage outputs after ingest (contracts between stages; paths relative to the repo root) ---

# embed: data/embeddings/<task>/<image column>.parquet and data/embeddings/<task>/text.parquet
# (text columns joined by the task's text template). Columns: table (train|test|left|right),
# id (string), vector (list<float32>, L2-normalised; zeros when missing), missing (bool).
# Beside them meta.json (model, weights identity, dims, device, dtype, counts, failures).
EMBEDDINGS_ROOT = Path("data/embeddings")
TEXT_EMBEDDING = "text"  # file stem of the joined-text embedding
EMBEDDING_META = "meta.json"
WEIGHTS_IDENTITY = EMBEDDINGS_ROOT / "weights.json"  # written by resolve_weights
EMB_TABLE, EMB_VECTOR, EMB_MISSING = "table", "vector", "missing"

# train_budget: data/train_budget/<task>.json, each task's tuning seconds (its share of the challenge's).
# train: data/models/<task>/ (ensemble.json and its members' models, best_params.json, trials.parquet),
# metrics/train/<task>.json, and baseline submissions submissions/baseline-<name>/<task>/ (one per task).
TRAIN_BUDGET_ROOT = Path("data/train_budget")
MODELS_ROOT = Path("data/models")
TRAIN_METRICS_ROOT = Path("metrics/train")
EMBED_METRICS_ROOT = Path("metrics/embed")
BASELINE_PREFIX = "baseline-"  # team names starting with it are reserved for baselines

# submissions: submissions/<team>/<submission_id>/<task>.csv|.parquet + submission.json;
# rejected ones under submissions/_rejected/<team>/<submission_id>/ with rejection.json.
SUBMISSIONS_ROOT = Path("submissions")
SUBMISSION_META = "submission.json"
REJECTED_DIR = "_rejected"
REJECTION_META = "rejection.json"
SUBMISSION_FORMATS = (".csv", ".parquet")
# Beside each accepted task file, the predictions as validated: typed Parquet (key as text, label,
# optional score as float64), sorted by key. Evaluate reads these only, never the file as sent.
CANONICAL_SUFFIX = ".canonical.parquet"


def canonical_name(task: str) -> str:
    return f"{task}{CANONICAL_SUFFIX}"


# Final selections (`mmtc select`): submissions/_final/<team>/<version>.json, one file per call,
# never rewritten; the highest version is the team's selection (last call wins).
FINAL_DIR = "_final"
# Rejections whose team name cannot be a folder name: submissions/_rejected/_invalid-team/<id>/,
# the name as given kept (escaped) in rejection.json. `_` names are never a team's.
INVALID_TEAM_DIR = "_invalid-team"
# Working folders of `mmtc submit` (dot names: never a team, ignored by DVC)
STAGING_DIR, LOCKS_DIR = ".staging", ".locks"

# evaluate: results/scores.parquet (submission x task x split x metric) and results/scores.duckdb
RESULTS_ROOT = Path("results")
SCORES = "scores.parquet"
SCORES_DB = "scores.duckdb"
EVALUATION_REPORT = "evaluation.json"
# ... and what the board needs of each file's rows, so it never re-reads a submission (results/
# only, never published): the bootstrap's counts per resampling group of test rows, the groups'
# true classes, each file's confusion matrix and, for matching files with a score, its PR curve.
BOOTSTRAP_COUNTS = "bootstrap_counts.parquet"
BOOTSTRAP_GROUPS = "bootstrap_groups.parquet"
CONFUSION = "confusion.parquet"
PR_CURVES = "pr_curves.parquet"  # what was scored, labels hashes, scorer version, invalid entries
SCORE_CACHE_DIR = "score_cache"  # results/score_cache/: a DVC `persist` out, kept across reruns
# leaderboard: leaderboard/latest.{parquet,csv,md,html}, leaderboard/snapshots/<UTC>.parquet
LEADERBOARD_ROOT = Path("leaderboard")
SNAPSHOTS_DIR = "snapshots"  # leaderboard/snapshots/: a DVC `persist` out, an immutable history
LATEST = "latest"


class SubmissionRecord(BaseModel):
    """submissions/<team>/<submission_id>/submission.json: what was submitted, by whom, when.

    Written once, next to the files, by `submit()`, for teams, demo teams and baselines alike.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    team: str  # slug; `baseline-<name>` is reserved for the organisers' baselines
    name: str  # the submission's display name (escaped wherever shown)
    submission_id: str  # for teams: <UTC yyyymmddThhmmssZ>-<8 hex of the content sha256>
    submitted_at: str  # ISO 8601 UTC, e.g. 2026-11-23T16:55:00Z
    files: dict[str, str]  # file name (<task>.csv or <task>.parquet) -> sha256, as sent
    tasks: list[str]
    canonical: dict[str, str] = {}  # <task>.canonical.parquet -> sha256: what was validated, and is scored
    baseline: bool = False
    description: str = ""


class FinalSelection(BaseModel):
    """submissions/_final/<team>/<version>.json: the submissions a team marked final, at one call."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    team: str
    version: int  # 1, 2, ...: the file name, zero-padded; the highest is in force
    selected_at: str  # ISO 8601 UTC
    submission_ids: list[str]  # empty: the team withdrew its selection (the policy's pick counts)
