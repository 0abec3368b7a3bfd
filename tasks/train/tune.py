"""Optuna tuning of CatBoost on one task's train data, and the fit-and-validate step it shares.

The objective is the task's primary metric on validation data carved out of train (a
held-out split or cross-validation, a param): macro-F1 for classification, F1 of the
positive class for matching with the decision threshold tuned on the validation
predictions (for classification, likewise, the power of a class-prior correction of the
argmax, which lets rare classes win more often where macro-F1 rewards it). TPE is seeded; bad trials are pruned on the validation loss as CatBoost
trains (holdout) or after each fold (cv); every trial stops early on the validation loss.

The study lives in memory, or in an Optuna storage (an RDB URL, or `journal:<path>` for a
journal file) that several workers share: `mmtc tune-worker` joins the study of a task,
whose name carries a fingerprint of the training data and the settings that shape a
trial, so a study is only ever continued on identical inputs.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from catboost import CatBoost, CatBoostError, Pool, sum_models

from tasks.core.errors import InputError
from tasks.core.params import SearchDimension, TrainParams
from tasks.core.schema import TaskType
from tasks.train.features import FeatureSet

JOURNAL_PREFIX = "journal:"
REPORT_EVERY = 10  # iterations between two reports to the pruner
# CatBoost's own defaults for the dimensions we tune; the first trial of a fresh study
# tries them, so tuning starts from the library's choice and can only improve on it.
CATBOOST_DEFAULTS: dict[str, Any] = {
    "depth": 6,
    "l2_leaf_reg": 3.0,
    "random_strength": 1.0,
    "bagging_temperature": 1.0,
    "auto_class_weights": "None",
}

optuna.logging.set_verbosity(optuna.logging.WARNING)


# ---------------------------------------------------------------------------------------
# metrics and thresholds (numpy; the scorer has its own SQL, these only steer tuning)


def macro_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    """Mean F1 over the classes that occur in truth or prediction."""
    classes = np.union1d(truth, pred)
    scores = []
    for c in classes:
        tp = np.sum((pred == c) & (truth == c))
        denom = np.sum(pred == c) + np.sum(truth == c)
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def accuracy(truth: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(truth == pred)) if len(truth) else 0.0


def binary_scores(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    tp = float(np.sum((pred == 1) & (truth == 1)))
    fp = float(np.sum((pred == 1) & (truth == 0)))
    fn = float(np.sum((pred == 0) & (truth == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {"f1": f1, "precision": precision, "recall": recall}


def best_threshold(truth: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """The decision threshold with the best F1 on these scores (ties: the highest), and that F1.

    The threshold lies halfway between the last score called positive and the next one,
    so it does not sit on a validation score.
    """
    truth = np.asarray(truth, dtype=np.int64)
    score = np.asarray(score, dtype=np.float64)
    positives = int(truth.sum())
    if positives == 0 or len(score) == 0:
        return 0.5, 0.0
    order = np.argsort(-score, kind="stable")
    s, t = score[order], truth[order]
    tp = np.cumsum(t)
    fp = np.cumsum(1 - t)
    f1 = 2 * tp / (tp + fp + positives)
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    f1 = np.where(last_of_tie, f1, -1.0)
    i = int(np.argmax(f1))
    lower = s[i + 1] if i + 1 < len(s) else 0.0
    return float((s[i] + lower) / 2), float(f1[i])


# ---------------------------------------------------------------------------------------
# the problem a trial solves


@dataclass(frozen=True)
class Problem:
    """Train features and labels of one task with its validation folds (test data is not here)."""

    task: str
    type: TaskType
    features: FeatureSet
    y: np.ndarray
    folds: tuple[tuple[np.ndarray, np.ndarray], ...]
    device: str  # CPU | GPU

    @property
    def X(self) -> pd.DataFrame:
        return self.features.train

    def restrict(self, features: FeatureSet) -> Problem:
        return Problem(self.task, self.type, features, self.y, self.folds, self.device)

    def fingerprint(self, params: TrainParams) -> str:
        """Identifies everything that shapes a trial's result: data, folds and settings."""
        h = hashlib.sha256()
        h.update(self.task.encode())
        h.update(json.dumps(self.features.describe(), sort_keys=True).encode())
        h.update(pd.util.hash_pandas_object(self.X, index=True).to_numpy().tobytes())
        h.update(np.asarray(self.y).astype(str).astype("U").tobytes())
        for fit, val in self.folds:
            h.update(fit.tobytes() + b"|" + val.tobytes())
        shaping = params.model_dump(exclude={"n_trials", "timeout_s", "storage", "default_iterations", "thread_count"})
        h.update(json.dumps(shaping, sort_keys=True, default=str).encode())
        h.update(self.device.encode())
        return h.hexdigest()[:16]


def stratified_folds(y: np.ndarray, params: TrainParams) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Holdout or k folds stratified by class; a class too small to split stays in the fit part."""
    rng = np.random.default_rng(params.seed)
    n_folds = 1 if params.validation == "holdout" else params.cv_folds
    fold_of = np.full(len(y), -1)
    for c in sorted(set(y.tolist()), key=str):
        rows = np.flatnonzero(y == c)
        rows = rows[rng.permutation(len(rows))]
        if params.validation == "holdout":
            k = int(round(len(rows) * params.validation_fraction))
            k = min(k, len(rows) - 1)
            fold_of[rows[:k]] = 0
        elif len(rows) >= 2:
            fold_of[rows] = np.arange(len(rows)) % min(n_folds, len(rows))
    return _folds_from(fold_of, n_folds)


def grouped_folds(groups: np.ndarray, params: TrainParams) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Holdout or k folds of whole groups (pairs that share a record stay together)."""
    rng = np.random.default_rng(params.seed)
    unique = np.unique(groups)
    unique = unique[rng.permutation(len(unique))]
    n_folds = 1 if params.validation == "holdout" else params.cv_folds
    if params.validation == "holdout":
        sizes = pd.Series(groups).value_counts()
        target, taken, chosen = params.validation_fraction * len(groups), 0, []
        for g in unique:
            if taken >= target:
                break
            chosen.append(g)
            taken += int(sizes[g])
        fold_of = np.where(np.isin(groups, chosen), 0, -1)
    else:
        fold_by_group = {g: i % n_folds for i, g in enumerate(unique.tolist())}
        fold_of = np.array([fold_by_group[g] for g in groups.tolist()])
    return _folds_from(fold_of, n_folds)


def _folds_from(fold_of: np.ndarray, n_folds: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    folds = []
    for k in range(n_folds):
        val = np.flatnonzero(fold_of == k)
        fit = np.flatnonzero(fold_of != k)
        if len(val) == 0 or len(fit) == 0:
            raise InputError(
                problem=f"train is too small to hold out validation fold {k + 1} of {n_folds}",
                fix="lower train.cv_folds, use validation: holdout or raise validation_fraction",
            )
        folds.append((fit, val))
    return tuple(folds)


# ---------------------------------------------------------------------------------------
# CatBoost


def resolve_device(choice: str) -> str:
    """CPU or GPU: `auto` takes the GPU when CatBoost sees a CUDA device."""
    from catboost.utils import get_gpu_device_count

    # without an NVIDIA driver there is nothing to ask CatBoost (which would log a CUDA error)
    driver = Path("/proc/driver/nvidia/version").exists() or any(Path("/dev").glob("nvidia[0-9]*"))
    count = get_gpu_device_count() if choice in ("auto", "gpu") and driver else 0
    if choice == "gpu" and count == 0:
        raise InputError(
            problem="train.device is gpu but CatBoost sees no CUDA device",
            fix="set train.device to auto or cpu, or run on a machine with a GPU",
        )
    return "GPU" if count > 0 else "CPU"


def catboost_params(problem: Problem, params: TrainParams, tuned: dict[str, Any], iterations: int) -> dict[str, Any]:
    """The full CatBoost parameter set of one fit: fixed settings, then the tuned ones."""
    multiclass = problem.type is TaskType.classification and len(np.unique(problem.y)) > 2
    out: dict[str, Any] = {
        "loss_function": "MultiClass" if multiclass else "Logloss",
        "iterations": int(iterations),
        "random_seed": params.seed,
        "thread_count": params.thread_count,
        "one_hot_max_size": params.one_hot_max_size,
        "max_ctr_complexity": params.max_ctr_complexity,
        "border_count": params.border_count,
        "allow_writing_files": False,
        "verbose": False,
    }
    if problem.device == "GPU":
        out.update(task_type="GPU", devices="0")
    if problem.features.text_processing and problem.features.text_features:
        out["text_processing"] = problem.features.text_processing
    for key, value in tuned.items():
        if key == "auto_class_weights" and value in (None, "None", "none"):
            continue
        out[key] = value
    if "bagging_temperature" in out:
        out["bootstrap_type"] = "Bayesian"
    # early stopping and pruning watch the unweighted loss, so trials with and without class weights compare
    out["eval_metric"] = out["loss_function"] + (":use_weights=false" if "auto_class_weights" in out else "")
    return out


def _pool(problem: Problem, X: pd.DataFrame, y: np.ndarray | None = None) -> Pool:
    return Pool(
        X, y, cat_features=problem.features.cat_features or None, text_features=problem.features.text_features or None
    )


class _PruningCallback:
    """Reports the validation loss to Optuna every few iterations and stops a trial it prunes.

    Fold k reports at steps k * max_iterations + iteration, so trials compare fold by fold
    at the same iteration.
    """

    def __init__(self, trial: optuna.Trial, metric: str, offset: int) -> None:
        self.trial, self.metric, self.offset, self.pruned_at = trial, metric, offset, None

    def after_iteration(self, info) -> bool:
        if info.iteration % REPORT_EVERY:
            return True
        loss = info.metrics["validation"][self.metric][-1]
        self.trial.report(-loss, self.offset + info.iteration)
        if self.trial.should_prune():
            self.pruned_at = info.iteration
            return False
        return True


@dataclass
class Validation:
    """What one parameter set achieved on the validation folds."""

    score: float  # the primary metric
    scores: dict[str, float]
    best_iteration: int  # mean over folds; the count a refit on all train scales up from
    decision: float | None  # the tuned decision rule: match threshold (matching) or class-prior power (classification)
    seconds: float = 0.0
    models: list[CatBoost] = field(default_factory=list, repr=False)  # the fold models, when kept


def predict_scores(model: CatBoost, problem: Problem, X: pd.DataFrame) -> np.ndarray:
    """Class probabilities (classification) or the positive-class probability (matching)."""
    proba = model.predict(_pool(problem, X), prediction_type="Probability")
    if problem.type is TaskType.matching:
        return np.asarray(proba)[:, 1] if np.ndim(proba) == 2 else np.asarray(proba)
    return np.asarray(proba)


def classes_of(model: CatBoost) -> np.ndarray:
    return np.asarray(model.classes_, dtype=object).astype(str)


PRIOR_POWERS = (0.0, 0.25, 0.5, 0.75, 1.0)


def class_priors(problem: Problem, classes: np.ndarray) -> np.ndarray:
    """Share of each class in train, in the order of `classes`."""
    y = problem.y.astype(str)
    return np.array([max(np.mean(y == c), 1.0 / len(y)) for c in classes])


def decide_classes(score: np.ndarray, classes: np.ndarray, priors: np.ndarray, prior_power: float) -> np.ndarray:
    """argmax of p(class | x) / prior(class) ** power: power 0 is the plain argmax; higher powers
    give rare classes more of the predictions, which macro-F1 rewards."""
    return classes[np.argmax(score / priors[None, :] ** prior_power, axis=1)]


def evaluate(
    problem: Problem,
    primary_metric: str,
    truth: np.ndarray,
    score: np.ndarray,
    classes: np.ndarray | None,
    decision: float | None,
) -> tuple[float, dict[str, float], float | None]:
    """Primary metric and companions of validation predictions under a decision rule, which
    is tuned on them when `decision` is None: the threshold on the match probability
    (matching) or the power of the class-prior correction (classification)."""
    if problem.type is TaskType.classification:
        truth = truth.astype(str)
        priors = class_priors(problem, classes)

        def scored(power: float) -> dict[str, float]:
            pred = decide_classes(score, classes, priors, power)
            return {"macro_f1": macro_f1(truth, pred), "accuracy": accuracy(truth, pred)}

        if decision is None:  # the smallest power among the best, so that no correction is the default
            decision = max(PRIOR_POWERS, key=lambda power: (scored(power)[primary_metric], -power))
        scores = scored(decision)
        return scores[primary_metric], scores, decision
    if decision is None:
        decision, _ = best_threshold(truth, score)
    scores = binary_scores(truth, (score >= decision).astype(int))
    return scores[primary_metric], scores, decision


def fit_and_validate(
    problem: Problem,
    params: TrainParams,
    tuned: dict[str, Any],
    iterations: int,
    primary_metric: str,
    *,
    early_stopping: bool = True,
    tune_decision: bool = True,
    trial: optuna.Trial | None = None,
    keep_models: bool = False,
) -> Validation:
    """Fit on each fold's fit part, predict its validation part, score the pooled predictions."""
    start = time.perf_counter()
    truth_parts, score_parts, best_iters, models = [], [], [], []
    classes = None
    for k, (fit, val) in enumerate(problem.folds):
        cb = catboost_params(problem, params, tuned, iterations)
        model = CatBoost(cb)
        callbacks = None
        callback = None
        if trial is not None and params.pruning and problem.device == "CPU":  # CatBoost takes callbacks on CPU only
            callback = _PruningCallback(trial, cb["eval_metric"], k * iterations)
            callbacks = [callback]
        model.fit(
            _pool(problem, problem.X.iloc[fit], problem.y[fit]),
            eval_set=_pool(problem, problem.X.iloc[val], problem.y[val]),
            early_stopping_rounds=params.early_stopping_rounds if early_stopping else None,
            use_best_model=early_stopping,
            callbacks=callbacks,
        )
        if callback is not None and callback.pruned_at is not None:
            raise optuna.TrialPruned(f"pruned at iteration {callback.pruned_at} of fold {k + 1}")
        best_iters.append(
            model.get_best_iteration()
            if early_stopping and model.get_best_iteration() is not None
            else model.tree_count_ - 1
        )
        fold_classes = classes_of(model) if problem.type is TaskType.classification else None
        score = predict_scores(model, problem, problem.X.iloc[val])
        if fold_classes is not None:
            classes = _align_classes(problem, classes)
            score = _expand(score, fold_classes, classes)
        truth_parts.append(problem.y[val])
        score_parts.append(score)
        if keep_models:
            models.append(model)
    truth, score = np.concatenate(truth_parts), np.concatenate(score_parts)
    value, scores, decision = evaluate(
        problem,
        primary_metric,
        truth,
        score,
        classes,
        None if tune_decision else (0.5 if problem.type is TaskType.matching else 0.0),
    )
    return Validation(
        score=value,
        scores=scores,
        best_iteration=int(round(float(np.mean(best_iters)))),
        decision=decision,
        seconds=time.perf_counter() - start,
        models=models,
    )


def _align_classes(problem: Problem, classes: np.ndarray | None) -> np.ndarray:
    return classes if classes is not None else np.asarray(sorted(set(problem.y.astype(str).tolist())), dtype=object)


def _expand(score: np.ndarray, have: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Probabilities over a fold's classes, placed in the columns of all train classes (a class absent from a fold's fit part scores 0)."""
    out = np.zeros((score.shape[0], len(want)))
    where = {c: j for j, c in enumerate(want)}
    for j, c in enumerate(have):
        out[:, where[c]] = score[:, j]
    return out


class FoldEnsemble:
    """The fold models of one parameter set, predicting as one model.

    CatBoost sums them into one model file (mean of their raw scores) when it can; with
    CatBoost text features it cannot, and the mean of their probabilities is used instead.
    """

    def __init__(self, models: list[CatBoost]) -> None:
        if not models:
            raise ValueError("an ensemble needs at least one model")
        self.models = models
        self.summed: CatBoost | None = models[0] if len(models) == 1 else None
        if len(models) > 1:
            try:
                self.summed = sum_models(models, weights=[1.0 / len(models)] * len(models))
            except CatBoostError:
                self.summed = None

    def classes(self) -> np.ndarray:
        return classes_of(self.summed if self.summed is not None else self.models[0])

    def predict(self, problem: Problem, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """Scores and, for classification, the class of each score column."""
        if self.summed is not None:
            classes = classes_of(self.summed) if problem.type is TaskType.classification else None
            return predict_scores(self.summed, problem, X), classes
        if problem.type is TaskType.matching:
            return np.mean([predict_scores(m, problem, X) for m in self.models], axis=0), None
        classes = np.asarray(sorted(set().union(*(classes_of(m).tolist() for m in self.models))), dtype=object)
        return np.mean(
            [_expand(predict_scores(m, problem, X), classes_of(m), classes) for m in self.models], axis=0
        ), classes

    @property
    def tree_count(self) -> int:
        return int(sum(m.tree_count_ for m in self.models))

    def save(self, folder: Path, stem: str) -> list[Path]:
        models = [self.summed] if self.summed is not None else self.models
        paths = (
            [folder / f"{stem}.cbm"]
            if len(models) == 1
            else [folder / f"{stem}.fold{k + 1}.cbm" for k in range(len(models))]
        )
        for model, path in zip(models, paths):
            _save_stable(model, path)
        return paths

    def params(self) -> dict:
        out = dict(self.models[0].get_params())
        out.pop("thread_count", None)
        return out

    def feature_importance(self) -> np.ndarray:
        return np.mean([m.get_feature_importance() for m in self.models], axis=0)


def _save_stable(model: CatBoost, path: Path) -> None:
    """Save without the metadata that changes on every run (finish time, random model GUID)."""
    metadata = model.get_metadata()
    for key in ("train_finish_time", "model_guid"):
        if key in metadata:
            del metadata[key]
    model.save_model(str(path))


def refit_iterations(best_iteration: int, params: TrainParams) -> int:
    """Rounds for a refit on all of train: the validated count, scaled by how much more data there is."""
    share = (1 - params.validation_fraction) if params.validation == "holdout" else (1 - 1 / params.cv_folds)
    return max(1, int(math.ceil((best_iteration + 1) / share)))


def fit_full(problem: Problem, params: TrainParams, tuned: dict[str, Any], iterations: int) -> CatBoost:
    model = CatBoost(catboost_params(problem, params, tuned, iterations))
    model.fit(_pool(problem, problem.X, problem.y))
    return model


def final_model(
    problem: Problem, params: TrainParams, tuned: dict[str, Any], validation: Validation
) -> tuple[FoldEnsemble, int]:
    """The model that predicts test: the validated fold models, or one refit on all of train."""
    if params.final_model == "folds" and validation.models:
        ensemble = FoldEnsemble(validation.models)
        return ensemble, ensemble.tree_count
    iterations = refit_iterations(validation.best_iteration, params)
    return FoldEnsemble([fit_full(problem, params, tuned, iterations)]), iterations


# ---------------------------------------------------------------------------------------
# the study


def open_storage(url: str | None):
    """None: in memory; `journal:<path>`: a journal file shared by workers; else an RDB URL."""
    if url is None:
        return None
    if url.startswith(JOURNAL_PREFIX):
        path = Path(url[len(JOURNAL_PREFIX) :])
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    return url


def suggest(trial: optuna.Trial, space: dict[str, SearchDimension]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, dim in sorted(space.items()):
        if dim.type == "int":
            out[name] = trial.suggest_int(name, int(dim.low), int(dim.high), log=dim.log)
        elif dim.type == "float":
            out[name] = trial.suggest_float(name, float(dim.low), float(dim.high), log=dim.log)
        else:
            out[name] = trial.suggest_categorical(name, dim.choices)
    return out


def _defaults_in(space: dict[str, SearchDimension], known: dict[str, Any]) -> dict[str, Any]:
    """CatBoost's defaults (and known values) for the dimensions of the space that hold them."""
    out = {}
    for name, value in {**CATBOOST_DEFAULTS, **known}.items():
        dim = space.get(name)
        if dim is None:
            continue
        if dim.type == "categorical" and value in dim.choices:
            out[name] = value
        elif dim.type != "categorical" and dim.low <= value <= dim.high:
            out[name] = int(value) if dim.type == "int" else float(value)
    return out


def open_study(
    problem: Problem,
    params: TrainParams,
    worker: int = 0,
    storage: str | None = None,
    first_trial: dict[str, Any] | None = None,
) -> optuna.Study:
    """Create or join the task's study; worker k samples with seed + k so workers do not repeat each other.

    A fresh study first tries CatBoost's defaults (`first_trial` adds what the caller knows,
    such as the learning rate CatBoost chose for the default baseline).
    """
    sampler = optuna.samplers.TPESampler(seed=params.seed + worker, n_startup_trials=params.tpe_startup_trials)
    pruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=5, n_warmup_steps=params.pruning_warmup_iterations, interval_steps=1
        )
        if params.pruning
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        storage=open_storage(storage if storage is not None else params.storage),
        sampler=sampler,
        pruner=pruner,
        study_name=f"mmtc-{problem.task}-{problem.fingerprint(params)}",
        direction="maximize",
        load_if_exists=True,
    )
    if not study.trials:
        study.enqueue_trial(
            _defaults_in(params.search_space, first_trial or {}),
            user_attrs={"origin": "catboost defaults"},
            skip_if_exists=True,
        )
    return study


def objective_for(problem: Problem, params: TrainParams, primary_metric: str, worker: int, keep: dict | None = None):
    """The trial function; `keep` receives the best validation (with its fold models) this process saw."""

    def objective(trial: optuna.Trial) -> float:
        tuned = suggest(trial, params.search_space)
        trial.set_user_attr("worker", worker)
        result = fit_and_validate(
            problem,
            params,
            tuned,
            params.max_iterations,
            primary_metric,
            trial=trial,
            keep_models=keep is not None and params.final_model == "folds",
        )
        trial.set_user_attr("best_iteration", result.best_iteration)
        trial.set_user_attr("scores", result.scores)
        if result.decision is not None:
            trial.set_user_attr("decision", result.decision)
        if keep is not None and ("validation" not in keep or result.score > keep["validation"].score):
            keep.update(number=trial.number, validation=result)
        return result.score

    return objective


def run_trials(
    study: optuna.Study,
    problem: Problem,
    params: TrainParams,
    primary_metric: str,
    *,
    n_trials: int,
    timeout_s: float | None,
    worker: int = 0,
    keep: dict | None = None,
) -> str:
    """Run trials until the study holds n_trials finished ones or the timeout passes; says which stopped it."""
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    start = time.perf_counter()
    study.optimize(
        objective_for(problem, params, primary_metric, worker, keep),
        n_trials=n_trials,
        timeout=timeout_s,
        callbacks=[optuna.study.MaxTrialsCallback(n_trials, states=finished)],
        gc_after_trial=False,
    )
    done = len(study.get_trials(deepcopy=False, states=finished))
    if done >= n_trials:
        return "n_trials"
    if timeout_s is not None and time.perf_counter() - start >= timeout_s:
        return "timeout"
    return "n_trials"


@dataclass
class TuneResult:
    best_params: dict[str, Any]
    best_value: float
    best_trial: int
    validation: Validation  # of the best trial, with its fold models when final_model is folds
    n_complete: int
    n_pruned: int
    n_failed: int
    stopped_by: str
    seconds: float
    study_name: str
    trials: pd.DataFrame = field(repr=False)


def tune(
    problem: Problem,
    params: TrainParams,
    primary_metric: str,
    *,
    worker: int = 0,
    first_trial: dict[str, Any] | None = None,
) -> TuneResult:
    """Run (or continue) the task's study and return its best trial."""
    start = time.perf_counter()
    study = open_study(problem, params, worker, first_trial=first_trial)
    keep: dict = {}
    stopped_by = run_trials(
        study,
        problem,
        params,
        primary_metric,
        n_trials=params.n_trials,
        timeout_s=params.timeout_s,
        worker=worker,
        keep=keep,
    )
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise InputError(
            problem=f"no tuning trial of {problem.task} completed",
            fix="raise train.timeout_s or train.n_trials, or set train.pruning: false",
            task=problem.task,
        )
    # best value first; among equals the earlier trial, so the choice does not depend on ties
    best = sorted(complete, key=lambda t: (-t.value, t.number))[0]
    pruned = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,))
    failed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))
    if keep.get("number") == best.number:
        validation = keep["validation"]
    elif params.final_model == "folds":  # the best trial ran in another worker (or an earlier run): fit its folds again
        validation = fit_and_validate(
            problem, params, dict(best.params), params.max_iterations, primary_metric, keep_models=True
        )
    else:
        validation = Validation(
            score=float(best.value),
            scores=dict(best.user_attrs.get("scores", {})),
            best_iteration=int(best.user_attrs["best_iteration"]),
            decision=best.user_attrs.get("decision"),
        )
    return TuneResult(
        best_params=dict(best.params),
        best_value=float(best.value),
        best_trial=best.number,
        validation=validation,
        n_complete=len(complete),
        n_pruned=len(pruned),
        n_failed=len(failed),
        stopped_by=stopped_by,
        seconds=time.perf_counter() - start,
        study_name=study.study_name,
        trials=trials_frame(study),
    )


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value, duration, worker, best iteration, decision rule, params."""
    rows = []
    names = sorted({k for t in study.trials for k in t.params})
    for t in sorted(study.trials, key=lambda t: t.number):
        duration = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None
        )
        row = {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "duration_s": duration,
            "worker": t.user_attrs.get("worker"),
            "best_iteration": t.user_attrs.get("best_iteration"),
            "decision": t.user_attrs.get("decision"),
            "last_step": t.last_step,
        }
        for name in names:
            value = t.params.get(name)
            row[f"params_{name}"] = None if value is None else str(value) if isinstance(value, str) else value
        rows.append(row)
    frame = pd.DataFrame(rows)
    for name in names:
        col = f"params_{name}"
        if frame[col].map(lambda v: isinstance(v, str)).any():
            frame[col] = frame[col].astype("string")
    return frame
