"""The train stage of one task: features, tuning, the final model and the baseline submissions.

Reads the public release and the embeddings only (never data/private/). Writes
data/models/<task>/ (the tuned model, best_params.json, trials.parquet, features.json),
metrics/train/<task>.json (validation scores of every baseline, tuning facts, timings) and
one ordinary submission per baseline under a reserved team name:
submissions/baseline-<name>/<task>/<task>.csv + submission.json.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tasks.core.files import sha256_file, staged_dir, write_csv, write_json, write_parquet
from tasks.core.params import TrainParams
from tasks.core.schema import (
    BASELINE_PREFIX,
    ID,
    LABEL,
    PAIR_ID,
    SCORE,
    SUBMISSION_META,
    Role,
    SubmissionRecord,
    TaskType,
)
from tasks.train.features import (
    FeatureSet,
    Release,
    build_features,
    labels,
    load_embeddings,
    load_release,
    pair_groups,
    test_keys,
)
from tasks.train.tune import (
    FoldEnsemble,
    Problem,
    TuneResult,
    accuracy,
    binary_scores,
    class_priors,
    decide_classes,
    final_model,
    fit_and_validate,
    fit_full,
    grouped_folds,
    macro_f1,
    resolve_device,
    stratified_folds,
    tune,
)

SCORE_DECIMALS = 6  # matching scores are rounded so that submissions are byte-stable


@dataclass(frozen=True)
class Baseline:
    """A reserved team on the leaderboard: how its predictions are made."""

    name: str
    title: str
    description: str
    kind: str  # tuned | default | floor
    roles: frozenset[Role] | None = None  # the input roles its features may use; None: all

    @property
    def team(self) -> str:
        return f"{BASELINE_PREFIX}{self.name}"


BASELINES: tuple[Baseline, ...] = (
    Baseline(
        "catboost-tuned",
        "CatBoost, tuned",
        "CatBoost on all features (tabular, text, CLIP image and text embeddings or, for matching, pair similarities), hyperparameters tuned with Optuna on a validation split of train; matching threshold tuned on validation.",
        "tuned",
    ),
    Baseline(
        "catboost-default",
        "CatBoost, default parameters",
        "CatBoost on all features with the library's default hyperparameters (learning rate chosen by CatBoost), iterations capped by train.default_iterations instead of the library's 1000 to fit the time budget; one-hot encoding up to train.one_hot_max_size values; matching threshold 0.5.",
        "default",
    ),
    Baseline(
        "majority",
        "Floor: majority class",
        "Predicts the most frequent train class for every row; for matching that is 'no match' for every pair (all negative).",
        "floor",
    ),
    Baseline(
        "no-images",
        "Ablation: no images",
        "The tuned CatBoost refitted without any feature computed from an image column (same hyperparameters, its own early stopping and threshold). Identical to catboost-tuned on tasks without images.",
        "tuned",
        frozenset({Role.text, Role.numeric, Role.categorical}),
    ),
    Baseline(
        "text-only",
        "Ablation: text only",
        "The tuned CatBoost refitted on features of the text columns only (words, text embeddings, text similarities). The floor on tasks without text.",
        "tuned",
        frozenset({Role.text}),
    ),
)


@dataclass
class BaselineResult:
    baseline: Baseline
    validation: dict[str, float]
    keys: pd.Series
    labels: np.ndarray
    scores: np.ndarray | None  # matching: probability of a match
    model: FoldEnsemble | None = None
    iterations: int | None = None  # boosting rounds of the final model (summed over fold models)
    decision: float | None = None  # match threshold (matching) or class-prior power (classification)
    note: str = ""


@dataclass
class TrainReport:
    task: str
    metrics: dict[str, Any]
    outputs: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        m = self.metrics
        tuned = m["baselines"]["catboost-tuned"][m["primary_metric"]]
        default = m["baselines"]["catboost-default"][m["primary_metric"]]
        t = m["tuning"]
        return (
            f"{self.task}: validation {m['primary_metric']} tuned {tuned:.3f} / default {default:.3f}; "
            f"{t['complete']} trials complete, {t['pruned']} pruned (stopped by {t['stopped_by']}) in {m['seconds']['tuning']:.1f}s; "
            f"total {m['seconds']['total']:.1f}s on {m['model']['device']}"
        )


def make_problem(release: Release, features: FeatureSet, params: TrainParams, device: str) -> Problem:
    y = labels(release)
    folds = (
        stratified_folds(y, params)
        if release.type is TaskType.classification
        else grouped_folds(pair_groups(release), params)
    )
    return Problem(release.task, release.type, features, y, folds, device)


def prepare(task: str, public_root: Path, embeddings_root: Path, params: TrainParams) -> tuple[Release, Problem]:
    """Read the release and embeddings of a task and build its tuning problem (shared with tune-worker)."""
    release = load_release(Path(public_root) / task)
    embeddings = load_embeddings(Path(embeddings_root) / task, release)
    features = build_features(release, embeddings, params)
    return release, make_problem(release, features, params, resolve_device(params.device))


def train_task(
    task: str,
    public_root: Path,
    embeddings_root: Path,
    models_root: Path,
    metrics_root: Path,
    submissions_root: Path,
    params: TrainParams,
    opens_at: str,
) -> TrainReport:
    """Everything the train stage does for one task."""
    start = time.perf_counter()
    release, problem = prepare(task, public_root, embeddings_root, params)
    features_s = time.perf_counter() - start
    # the default baseline first: the study's first trial then repeats it (with the learning
    # rate CatBoost chose for it), so tuning starts from the library's choice
    default = next(b for b in BASELINES if b.kind == "default")
    by_name: dict[str, BaselineResult] = {default.name: _run_baseline(default, release, problem, params, None, {})}
    learning_rate = by_name[default.name].model.models[0].get_all_params()["learning_rate"]
    before_tuning = time.perf_counter()
    tuning = tune(problem, params, release.primary_metric, first_trial={"learning_rate": learning_rate})
    after_tuning = time.perf_counter()
    for b in BASELINES:
        if b.name not in by_name:
            by_name[b.name] = _run_baseline(b, release, problem, params, tuning, by_name)
    results = [by_name[b.name] for b in BASELINES]
    baselines_s = (before_tuning - start - features_s) + (time.perf_counter() - after_tuning)

    outputs = []
    tuned = by_name["catboost-tuned"]
    models_dir = Path(models_root) / task
    with staged_dir(models_dir) as stage:
        for r in results:
            if r.model is not None and (r.baseline.name == "catboost-tuned" or r.model is not tuned.model):
                r.model.save(stage, "model" if r.baseline.name == "catboost-tuned" else r.baseline.team)
        write_json(
            stage / "best_params.json",
            {
                "task": task,
                "tuned": tuning.best_params,
                "catboost": tuned.model.params(),
                "final_model": params.final_model,
                "iterations": tuned.iterations,
                "best_iteration_on_validation": tuning.validation.best_iteration,
                "decision": {
                    "threshold" if release.type is TaskType.matching else "prior_power": tuning.validation.decision
                },
                "best_trial": tuning.best_trial,
                "validation": {k: round(v, 6) for k, v in tuning.validation.scores.items()},
                "study": tuning.study_name,
            },
        )
        write_parquet(pa.Table.from_pandas(tuning.trials, preserve_index=False), stage / "trials.parquet")
        importance = tuned.model.feature_importance()
        write_json(
            stage / "features.json",
            {
                "features": [
                    dict(d, importance=round(float(v), 6)) for d, v in zip(problem.features.describe(), importance)
                ],
                "cat_features": problem.features.cat_features,
                "text_features": problem.features.text_features,
            },
        )
    outputs.append(models_dir)

    for r in results:
        outputs.append(write_submission(Path(submissions_root), task, release.type, r, opens_at))

    total_s = time.perf_counter() - start
    metrics = {
        "task": task,
        "type": release.type.value,
        "primary_metric": release.primary_metric,
        "validation": {
            "method": params.validation,
            "rows": int(sum(len(v) for _, v in problem.folds)),
            "folds": len(problem.folds),
        },
        "baselines": {r.baseline.name: {k: round(v, 6) for k, v in r.validation.items()} for r in results},
        "tuning": {
            "complete": tuning.n_complete,
            "pruned": tuning.n_pruned,
            "failed": tuning.n_failed,
            "stopped_by": tuning.stopped_by,
            "best_trial": tuning.best_trial,
        },
        "model": {
            "device": problem.device,
            "final": params.final_model,
            "iterations": tuned.iterations,
            ("threshold" if release.type is TaskType.matching else "prior_power"): None
            if tuned.decision is None
            else round(tuned.decision, 6),
            "features": len(problem.features.features),
        },
        "seconds": {
            "features": round(features_s, 2),
            "tuning": round(tuning.seconds, 2),
            "baselines": round(baselines_s, 2),
            "total": round(total_s, 2),
        },
    }
    metrics_path = Path(metrics_root) / f"{task}.json"
    write_json(metrics_path, metrics)
    outputs.append(metrics_path)
    return TrainReport(task, metrics, outputs)


def _run_baseline(
    b: Baseline,
    release: Release,
    problem: Problem,
    params: TrainParams,
    tuning: TuneResult | None,
    done: dict[str, BaselineResult],
) -> BaselineResult:
    keys = test_keys(release)
    metric = release.primary_metric
    if b.kind == "floor":
        return _floor(b, problem, keys)
    if b.kind == "default":
        # what a participant gets from CatBoost out of the box: validated on the same folds, fitted on all of train
        val = fit_and_validate(
            problem, params, {}, params.default_iterations, metric, early_stopping=False, tune_decision=False
        )
        model = FoldEnsemble([fit_full(problem, params, {}, params.default_iterations)])
        return _predict(
            b,
            problem,
            model,
            keys,
            val.scores,
            params.default_iterations,
            0.5 if problem.type is TaskType.matching else 0.0,
        )
    # tuned, or a modality ablation of it: same hyperparameters, own early stopping and threshold
    sub = problem if b.roles is None else problem.restrict(problem.features.restrict(set(b.roles)))
    if not sub.features.features:
        result = _floor(b, problem, keys)
        result.note = f"no feature of the roles {', '.join(sorted(r.value for r in b.roles))}: the floor"
        return result
    if b.roles is not None and len(sub.features.features) == len(problem.features.features):
        same = done["catboost-tuned"]
        return BaselineResult(
            b,
            same.validation,
            same.keys,
            same.labels,
            same.scores,
            same.model,
            same.iterations,
            same.decision,
            note="no feature to leave out: the tuned model",
        )
    validation = (
        tuning.validation
        if b.roles is None
        else fit_and_validate(
            sub, params, tuning.best_params, params.max_iterations, metric, keep_models=params.final_model == "folds"
        )
    )
    model, iterations = final_model(sub, params, tuning.best_params, validation)
    return _predict(b, sub, model, keys, validation.scores, iterations, validation.decision)


def _predict(
    b: Baseline,
    problem: Problem,
    model: FoldEnsemble,
    keys: pd.Series,
    validation: dict[str, float],
    iterations: int,
    decision: float | None,
) -> BaselineResult:
    """Test predictions under the decision rule chosen on validation (threshold or class-prior power)."""
    score, classes = model.predict(problem, problem.features.test)
    if problem.type is TaskType.classification:
        power = decision or 0.0
        labels = decide_classes(score, classes, class_priors(problem, classes), power)
        return BaselineResult(b, validation, keys, labels.astype(object), None, model, iterations, power)
    score = np.round(score, SCORE_DECIMALS)
    return BaselineResult(b, validation, keys, (score >= decision).astype(np.int8), score, model, iterations, decision)


def _floor(b: Baseline, problem: Problem, keys: pd.Series) -> BaselineResult:
    """The majority class of train; on validation, the majority of each fold's fit part."""
    truth_parts, pred_parts = [], []
    for fit, val in problem.folds:
        truth_parts.append(problem.y[val])
        pred_parts.append(np.full(len(val), _majority(problem.y[fit]), dtype=object))
    truth, pred = np.concatenate(truth_parts), np.concatenate(pred_parts)
    majority = _majority(problem.y)
    if problem.type is TaskType.classification:
        return BaselineResult(
            b, _class_scores(truth, pred), keys, np.full(len(keys), str(majority), dtype=object), None
        )
    scores = binary_scores(truth.astype(int), pred.astype(int))
    return BaselineResult(
        b, scores, keys, np.full(len(keys), int(majority), dtype=np.int8), np.zeros(len(keys)), decision=0.5
    )


def _class_scores(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "macro_f1": macro_f1(truth.astype(str), pred.astype(str)),
        "accuracy": accuracy(truth.astype(str), pred.astype(str)),
    }


def _majority(y: np.ndarray):
    """The most frequent value; ties go to the smallest, so the choice is stable."""
    values, counts = np.unique(
        np.asarray(y).astype(str) if np.asarray(y).dtype == object else np.asarray(y), return_counts=True
    )
    return values[np.flatnonzero(counts == counts.max())[0]]


def submission_table(task_type: TaskType, r: BaselineResult) -> pa.Table:
    """The submission format: classification id,label; matching pair_id,label,score; sorted by key."""
    if task_type is TaskType.classification:
        frame = pd.DataFrame({ID: r.keys.to_numpy(dtype=object), LABEL: r.labels.astype(str)})
        frame = frame.sort_values(ID, kind="stable")
        return pa.table(
            {ID: pa.array(frame[ID].tolist(), pa.string()), LABEL: pa.array(frame[LABEL].tolist(), pa.string())}
        )
    frame = pd.DataFrame(
        {PAIR_ID: r.keys.to_numpy(dtype=object), LABEL: r.labels.astype(np.int8), SCORE: r.scores.astype(np.float64)}
    )
    frame = frame.sort_values(PAIR_ID, kind="stable")
    return pa.table(
        {
            PAIR_ID: pa.array(frame[PAIR_ID].tolist(), pa.string()),
            LABEL: pa.array(frame[LABEL].to_numpy(), pa.int8()),
            SCORE: pa.array(frame[SCORE].to_numpy(), pa.float64()),
        }
    )


def write_submission(submissions_root: Path, task: str, task_type: TaskType, r: BaselineResult, opens_at: str) -> Path:
    """submissions/baseline-<name>/<task>/<task>.csv and submission.json, swapped in whole."""
    folder = Path(submissions_root) / r.baseline.team / task
    name = f"{task}.csv"
    with staged_dir(folder) as stage:
        write_csv(submission_table(task_type, r), stage / name)
        description = r.baseline.description + (f" ({r.note})" if r.note else "")
        record = SubmissionRecord(
            team=r.baseline.team,
            name=r.baseline.title,
            submission_id=task,
            submitted_at=opens_at,
            files={name: sha256_file(stage / name)},
            tasks=[task],
            baseline=True,
            description=description,
        )
        write_json(stage / SUBMISSION_META, record.model_dump(mode="json"))
    return folder
