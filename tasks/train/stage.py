"""The train stage of one task: features, tuning, the final model and the baseline submissions.

Reads the public release and the embeddings only (never data/private/). Writes
data/models/<task>/ (the tuned ensemble: ensemble.json and its members' CatBoost models;
best_params.json, trials.parquet, features.json),
metrics/train/<task>.json (validation scores of every baseline, tuning facts, timings) and
one ordinary submission per baseline under a reserved team name:
submissions/baseline-<name>/<task>/<task>.csv + submission.json.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tasks.core.files import staged_dir, write_csv, write_json, write_parquet
from tasks.core.metrics import scores as metric_scores
from tasks.core.params import SubmitParams, TrainParams
from tasks.core.progress import step
from tasks.core.schema import (
    BASELINE_PREFIX,
    ID,
    LABEL,
    PAIR_ID,
    SCORE,
    Role,
    TaskType,
)
from tasks.submissions.submit import submit
from tasks.submissions.validate import TaskContract, load_contracts
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
    DEFAULTS_MEMBER,
    Ensemble,
    FoldEnsemble,
    Member,
    Problem,
    TuneResult,
    Validation,
    catboost_member,
    checked_ensemble,
    decide,
    final_model,
    fit_and_validate,
    fixed_decision,
    grouped_folds,
    resolve_device,
    select_ensemble,
    stratified_folds,
    text_model_member,
    tune,
    with_tuned_decision,
)

# The limits of `submit()` do not apply to the organisers; its file cap does (params.yaml `submit`,
# passed by the CLI). This is the cap for callers without params (tests, benchmarks).
ORGANISER_SUBMIT = SubmitParams(max_per_day=1, max_total=1, max_file_mb=1024, max_description_chars=0)
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
        "CatBoost, tuned and ensembled",
        "CatBoost on all features (tabular, text, CLIP image and text embeddings or, for matching, pair similarities): CatBoost's defaults, a portfolio of known-good configurations, then Optuna TPE, within the task's time budget, scored by cross-validation on train; the cross-validation fold models of the best trials, the default model and (classification) the text model combined by greedy ensemble selection on their out-of-fold predictions, kept only where the same selection made on all folds but one beats the defaults on the held-out fold (else the defaults alone); decision rule (matching threshold, class-prior power) tuned on them where a fold-by-fold check says tuning it helps (train.decision).",
        "tuned",
    ),
    Baseline(
        "catboost-default",
        "CatBoost, default parameters",
        "CatBoost on all features with the library's default hyperparameters (learning rate chosen by CatBoost), iterations capped by train.default_iterations instead of the library's 1000 to fit the time budget; one-hot encoding up to train.one_hot_max_size values; matching threshold 0.5; final model as train.final_model says (folds: the cross-validation fold models averaged).",
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
        "catboost-tuned's recipe without any feature computed from an image column: where its ensemble check kept CatBoost's defaults, the defaults refitted on the other features; else the best tuned configuration refitted on them (same hyperparameters, its own early stopping and decision rule), ensembled with the text model. Identical to catboost-tuned on tasks without images.",
        "tuned",
        frozenset({Role.text, Role.numeric, Role.categorical}),
    ),
    Baseline(
        "text-only",
        "Ablation: text only",
        "catboost-tuned's recipe on features of the text columns only (words, text embeddings, text similarities): where its ensemble check kept CatBoost's defaults, the defaults refitted on them; else the best tuned configuration refitted on them, ensembled with the text model. The floor on tasks without text.",
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
    model: FoldEnsemble | Ensemble | None = None
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
        members = len(m["ensemble"]["members"])
        return (
            f"{self.task}: validation {m['primary_metric']} tuned {tuned:.3f} (ensemble of {members}; best single "
            f"{m['ensemble']['best_single']:.3f}) / default {default:.3f}; "
            f"{t['complete']} trials complete, {t['pruned']} pruned (stopped by {t['stopped_by']}) in "
            f"{m['seconds']['tuning']:.1f}s of a {t['budget_s']}s budget; total {m['seconds']['total']:.1f}s on {m['model']['device']}"
        )


def make_problem(release: Release, features: FeatureSet, params: TrainParams, device: str) -> Problem:
    y = labels(release)
    folds = (
        stratified_folds(y, params)
        if release.type is TaskType.classification
        else grouped_folds(pair_groups(release), params)
    )
    return Problem(release.task, release.type, features, y, folds, device, params.decision)


def prepare(
    task: str, public_root: Path, embeddings_root: Path, params: TrainParams, progress: bool = False
) -> tuple[Release, Problem]:
    """Read the release and embeddings of a task and build its tuning problem (shared with tune-worker)."""
    release = load_release(Path(public_root) / task)
    embeddings = load_embeddings(Path(embeddings_root) / task, release)
    features = build_features(release, embeddings, params, progress=progress)
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
    *,
    budget_s: float | None = None,
    progress: bool = False,
    submit_params: SubmitParams | None = None,
) -> TrainReport:
    """Everything the train stage does for one task; `budget_s` caps the tuning (None: n_trials alone)."""
    start = time.perf_counter()
    if progress:
        step(f"train {task}: building features")
    release, problem = prepare(task, public_root, embeddings_root, params, progress=progress)
    features_s = time.perf_counter() - start
    metric = release.primary_metric
    # the default baseline first: its fit is also the study's first trial (CatBoost's defaults,
    # with the learning rate CatBoost chose) and an ensemble candidate, so it is fitted once
    if progress:
        step(f"train {task}: CatBoost defaults ({len(problem.folds)} folds, {params.default_iterations} rounds)")
    default = next(b for b in BASELINES if b.kind == "default")
    default_val = _fit_defaults(problem, params, metric)
    default_model = _default_model(problem, params, default_val)
    by_name: dict[str, BaselineResult] = {
        default.name: _predict(
            default,
            problem,
            default_model,
            test_keys(release),
            default_val.scores,
            params.default_iterations,
            fixed_decision(problem),
        )
    }
    learning_rate = default_val.models[0].get_all_params()["learning_rate"]
    before_tuning = time.perf_counter()
    if progress:
        step(
            f"train {task}: tuning, budget {'none' if budget_s is None else f'{budget_s:.0f} s'}, at most {params.n_trials} trials"
        )
    tuned_defaults = with_tuned_decision(problem, metric, default_val)
    tuning = tune(
        problem,
        params,
        metric,
        first_trial={"learning_rate": learning_rate},
        defaults=tuned_defaults,
        timeout_s=budget_s,
        progress=progress,
    )
    after_tuning = time.perf_counter()
    members = _members(problem, params, tuning, tuned_defaults, default_model)
    ensemble = (
        checked_ensemble(problem, metric, members, params.ensemble_size, DEFAULTS_MEMBER)
        if params.ensemble_check
        else select_ensemble(problem, metric, members, params.ensemble_size)
    )
    if progress:
        used = ", ".join(f"{m.name} {w:.2f}" for m, w in ensemble.used())
        step(
            f"train {task}: ensemble {metric} {ensemble.validation.score:.4f} from {used}"
            + (f"; {ensemble.check.describe()}" if ensemble.check is not None else "")
        )
    tuned_baseline = next(b for b in BASELINES if b.name == "catboost-tuned")
    by_name[tuned_baseline.name] = _predict(
        tuned_baseline,
        problem,
        ensemble,
        test_keys(release),
        ensemble.validation.scores,
        ensemble.tree_count,
        ensemble.validation.decision,
    )
    for b in BASELINES:
        if b.name not in by_name:
            by_name[b.name] = _run_baseline(b, release, problem, params, tuning, by_name)
    results = [by_name[b.name] for b in BASELINES]
    baselines_s = (before_tuning - start - features_s) + (time.perf_counter() - after_tuning)

    outputs = []
    tuned = by_name["catboost-tuned"]
    models_dir = Path(models_root) / task
    with staged_dir(models_dir) as stage:
        recipe = ensemble.save(stage)
        for r in results:
            if r.baseline.name != "catboost-tuned" and isinstance(r.model, FoldEnsemble):
                r.model.save(stage, r.baseline.team)
        write_json(
            stage / "best_params.json",
            {
                "task": task,
                "tuned": tuning.best_params,
                "catboost": tuning.candidates[0].validation.models[0].get_params()
                if tuning.candidates and tuning.candidates[0].validation.models
                else {},
                "final_model": params.final_model,
                "iterations": tuned.iterations,
                "best_iteration_on_validation": tuning.validation.best_iteration,
                "decision": {
                    "threshold" if release.type is TaskType.matching else "prior_power": ensemble.validation.decision
                },
                "best_trial": tuning.best_trial,
                "validation": {k: round(v, 6) for k, v in ensemble.validation.scores.items()},
                "best_single_validation": {k: round(v, 6) for k, v in tuning.validation.scores.items()},
                "ensemble": {m["name"]: m["weight"] for m in recipe["members"]},
                "study": tuning.study_name,
            },
        )
        write_parquet(pa.Table.from_pandas(tuning.trials, preserve_index=False), stage / "trials.parquet")
        importance = _importance(ensemble, len(problem.features.features))
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

    contracts = load_contracts(Path(public_root), [task])
    for r in results:
        outputs.append(
            write_submission(
                Path(submissions_root), task, release.type, r, opens_at, contracts, submit_params or ORGANISER_SUBMIT
            )
        )

    total_s = time.perf_counter() - start
    metrics = {
        "task": task,
        "type": release.type.value,
        "primary_metric": metric,
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
            "budget_s": budget_s,
        },
        "ensemble": {
            "members": {m["name"]: m["weight"] for m in recipe["members"]},
            "best_single": round(max(_single_scores(problem, metric, members)), 6),
            "candidates": len(members),
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


def _fit_defaults(problem: Problem, params: TrainParams, metric: str) -> Validation:
    """CatBoost's defaults, train.default_iterations rounds, no early stopping, the fixed decision rule."""
    return fit_and_validate(
        problem,
        params,
        {},
        params.default_iterations,
        metric,
        early_stopping=False,
        tune_decision=False,
        keep_models=True,
    )


def _default_model(problem: Problem, params: TrainParams, validation: Validation) -> FoldEnsemble:
    """The default baseline's final model: its fold models (train.final_model folds) or a refit on all of train."""
    if params.final_model == "folds":
        return FoldEnsemble(validation.models)
    return final_model(problem, params.model_copy(update={"final_model": "refit"}), {}, validation)[0]


def _members(
    problem: Problem, params: TrainParams, tuning: TuneResult, defaults: Validation, default_model: FoldEnsemble
) -> list[Member]:
    """The ensemble's candidates: the kept trials (best first), the default baseline, the text model."""
    members = []
    # a refit costs a whole fit per member: then only the best trial competes with the defaults and the text model
    for candidate in tuning.candidates if params.final_model == "folds" else tuning.candidates[:1]:
        if candidate.name == DEFAULTS_MEMBER:
            model = default_model
        elif params.final_model == "folds":
            model = FoldEnsemble(candidate.validation.models)
        else:
            model = final_model(problem, params, candidate.params, candidate.validation)[0]
        members.append(catboost_member(candidate.name, candidate.validation, candidate.params, model))
    if not any(c.name == DEFAULTS_MEMBER for c in tuning.candidates):
        members.append(catboost_member(DEFAULTS_MEMBER, defaults, {}, default_model))
    text = text_model_member(problem)
    if text is not None:
        members.append(text)
    return members


def _single_scores(problem: Problem, metric: str, members: list[Member]) -> list[float]:
    return [select_ensemble(problem, metric, [m], 1).validation.score for m in members]


def _importance(ensemble: Ensemble, n_features: int) -> np.ndarray:
    """Feature importance of the CatBoost members, weighted as in the ensemble (the text model has none)."""
    total = np.zeros(n_features)
    for member, weight in ensemble.used():
        if member.model is not None:
            total += weight * member.model.feature_importance()
    return total


def _run_baseline(
    b: Baseline,
    release: Release,
    problem: Problem,
    params: TrainParams,
    tuning: TuneResult,
    done: dict[str, BaselineResult],
) -> BaselineResult:
    """The floor, or a modality ablation of the tuned baseline (the best configuration on fewer features)."""
    keys = test_keys(release)
    metric = release.primary_metric
    if b.kind == "floor":
        return _floor(b, problem, keys)
    roles = b.roles if b.roles is not None else frozenset(Role)
    sub = problem.restrict(problem.features.restrict(set(roles)))
    if not sub.features.features:
        result = _floor(b, problem, keys)
        result.note = f"no feature of the roles {', '.join(sorted(r.value for r in roles))}: the floor"
        return result
    if len(sub.features.features) == len(problem.features.features):
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
    tuned = done["catboost-tuned"].model
    if isinstance(tuned, Ensemble) and [m.name for m, _ in tuned.used()] == [DEFAULTS_MEMBER]:
        # the tuned baseline is the defaults alone (its ensemble check refused the ensemble): the
        # ablation is the same recipe on fewer features, not a tuned configuration the check refused
        validation = with_tuned_decision(sub, metric, _fit_defaults(sub, params, metric))
        members = [catboost_member(DEFAULTS_MEMBER, validation, {}, _default_model(sub, params, validation))]
        ensemble = select_ensemble(sub, metric, members, 1)
    else:
        validation = fit_and_validate(
            sub, params, tuning.best_params, params.max_iterations, metric, keep_models=params.final_model == "folds"
        )
        model, _ = final_model(sub, params, tuning.best_params, validation)
        members = [catboost_member("best-configuration", validation, tuning.best_params, model)]
        text = text_model_member(sub)
        if text is not None:
            members.append(text)
        ensemble = select_ensemble(sub, metric, members, params.ensemble_size)
    return _predict(
        b, sub, ensemble, keys, ensemble.validation.scores, ensemble.tree_count, ensemble.validation.decision
    )


def _predict(
    b: Baseline,
    problem: Problem,
    model: FoldEnsemble | Ensemble,
    keys: pd.Series,
    validation: dict[str, float],
    iterations: int,
    decision: float | None,
) -> BaselineResult:
    """Test predictions under the decision rule chosen on validation (threshold or class-prior power)."""
    score, classes = model.predict(problem, problem.features.test)
    if problem.type is TaskType.classification:
        power = decision or 0.0
        labels = decide(problem, score, classes, power)
        return BaselineResult(b, validation, keys, labels.astype(object), None, model, iterations, power)
    if decision is None:
        raise ValueError("matching predictions need their threshold")
    score = np.round(score, SCORE_DECIMALS)
    matches = decide(problem, score, classes, decision).astype(np.int8)
    return BaselineResult(b, validation, keys, matches, score, model, iterations, decision)


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
    scores = metric_scores(TaskType.matching, truth.astype(int), pred.astype(int))
    return BaselineResult(
        b, scores, keys, np.full(len(keys), int(majority), dtype=np.int8), np.zeros(len(keys)), decision=0.5
    )


def _class_scores(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return metric_scores(TaskType.classification, truth.astype(str), pred.astype(str))


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
    if r.scores is None:
        raise ValueError(f"{r.baseline.name}: a matching baseline has scores")
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


def write_submission(
    submissions_root: Path,
    task: str,
    task_type: TaskType,
    r: BaselineResult,
    opens_at: str,
    contracts: dict[str, TaskContract],
    submit_params: SubmitParams,
) -> Path:
    """submissions/baseline-<name>/<task>/: the baseline's CSV submitted like any team's, through
    `submit()` (validated, with its canonical twin), as the organisers, dated at the opening."""
    when = datetime.fromisoformat(opens_at.replace("Z", "+00:00"))
    with tempfile.TemporaryDirectory(prefix=f"mmtc-{r.baseline.team}-") as tmp:
        path = Path(tmp) / f"{task}.csv"
        write_csv(submission_table(task_type, r), path)
        result = submit(
            path,
            r.baseline.team,
            submissions_root=submissions_root,
            contracts=contracts,
            params=submit_params,
            name=r.baseline.title,
            description=r.baseline.description + (f" ({r.note})" if r.note else ""),
            now=when,
            organiser=True,
            submission_id=task,
        )
    return result.folder
