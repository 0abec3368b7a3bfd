"""The one metric registry: every metric's name, task type, direction, SQL, numpy twin and
sklearn cross-check, in one place.

The scorer (tasks/scoring), the bootstrap (tasks/board), tuning (tasks/train) and the manifest
check (which metrics a task may rank by) all read this table, so adding a metric is one entry
here plus its tests.

Count metrics are defined on per-class confusion counts of one file and one part of the test
set, the relation `class_counts(class, tp, fp, fn)`:

* classification: one row per class of the part's label set (the classes in the truth or in
  the predictions, sklearn's default); a row without a prediction is a false negative of its
  class and a false positive of none;
* matching: one row, the positive class (a match); a pair without a prediction counts as 0.

`sql` is an aggregate over those rows (a row of zeros, a class absent from a resample, counts
for nothing) (DuckDB, grouped by file and part; sums of per-class
terms go through DECIMAL so that the value does not depend on the thread schedule);
`from_counts` is the same formula in numpy over arrays of the same rows (tuning and the
reference bootstrap use it); `sklearn` is the cross-check that the tests hold both to.
Score metrics (`needs_score`) read the optional `score` column and have their own SQL file in
tasks/scoring/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tasks.core.schema import TaskType

MAXIMIZE = "max"  # every metric here: higher is better


def _ratio(num, den):
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _sk(name: str, **kwargs) -> Callable:
    """A scikit-learn metric, imported when first called (the scorer never needs sklearn)."""

    def call(truth, pred):
        import sklearn.metrics

        return float(getattr(sklearn.metrics, name)(truth, pred, **kwargs))

    return call


@dataclass(frozen=True)
class Metric:
    name: str
    task_type: TaskType
    title: str
    sql: str | None  # aggregate over class_counts(class, tp, fp, fn) rows of one file and part
    from_counts: Callable[[np.ndarray, np.ndarray, np.ndarray], float] | None  # tp, fp, fn per class
    sklearn: Callable  # (truth, pred) -> value, the cross-check
    direction: str = MAXIMIZE
    needs_score: bool = False  # reads the `score` column (its SQL is a file of tasks/scoring/)
    sql_file: str | None = None
    refused_as_primary: str | None = None  # why a task may not rank by it

    def value(self, tp, fp, fn) -> float:
        if self.from_counts is None:
            raise ValueError(f"metric '{self.name}' is not computed from confusion counts")
        return float(self.from_counts(np.asarray(tp), np.asarray(fp), np.asarray(fn)))


def _macro_f1(tp, fp, fn) -> float:
    seen = (tp + fp + fn) > 0  # the label set: classes in the truth or the predictions
    return float(np.mean(_ratio(2 * tp, 2 * tp + fp + fn)[seen])) if np.any(seen) else 0.0


def _balanced_accuracy(tp, fp, fn) -> float:
    support = tp + fn
    return float(np.mean(_ratio(tp, support)[support > 0])) if np.any(support > 0) else 0.0


def _accuracy(tp, fp, fn) -> float:
    n = np.sum(tp + fn)
    return float(np.sum(tp) / n) if n else 0.0


def _precision(tp, fp, fn) -> float:
    return float(_ratio(np.sum(tp), np.sum(tp + fp)))


def _recall(tp, fp, fn) -> float:
    return float(_ratio(np.sum(tp), np.sum(tp + fn)))


def _f1(tp, fp, fn) -> float:
    return float(_ratio(2 * np.sum(tp), np.sum(2 * tp + fp + fn)))


def _ap_sklearn(truth, score):
    import sklearn.metrics

    truth = np.asarray(truth)
    return float(sklearn.metrics.average_precision_score(truth, score)) if truth.sum() else 0.0


C, M = TaskType.classification, TaskType.matching
TRIVIAL = (
    "a trivial submission maximises it ({how}), so it cannot rank teams. Fix: in task.yaml set "
    "`primary_metric: f1` (or another of {allowed}); {name} is still scored and shown"
)

_ENTRIES = (
    Metric(
        "macro_f1",
        C,
        "macro-F1",
        "coalesce(CAST(sum(CAST(2 * tp / nullif(2 * tp + fp + fn, 0) AS DECIMAL(38, 18))) AS DOUBLE)"
        " / nullif(count(*) FILTER (WHERE tp + fp + fn > 0), 0), 0.0)",
        _macro_f1,
        _sk("f1_score", average="macro", zero_division=0),
    ),
    Metric(
        "accuracy",
        C,
        "accuracy",
        "coalesce(CAST(sum(tp) AS DOUBLE) / nullif(sum(tp + fn), 0), 0.0)",
        _accuracy,
        _sk("accuracy_score"),
    ),
    Metric(
        "balanced_accuracy",
        C,
        "balanced accuracy",
        "coalesce(CAST(sum(CAST(tp / nullif(tp + fn, 0) AS DECIMAL(38, 18))) FILTER (WHERE tp + fn > 0) AS DOUBLE)"
        " / nullif(count(*) FILTER (WHERE tp + fn > 0), 0), 0.0)",
        _balanced_accuracy,
        _sk("balanced_accuracy_score"),
    ),
    Metric(
        "f1",
        M,
        "F1 of matches",
        "CASE WHEN sum(2 * tp + fp + fn) > 0 THEN 2.0 * sum(tp) / sum(2 * tp + fp + fn) ELSE 0.0 END",
        _f1,
        _sk("f1_score", zero_division=0),
    ),
    Metric(
        "precision",
        M,
        "precision of matches",
        "CASE WHEN sum(tp + fp) > 0 THEN CAST(sum(tp) AS DOUBLE) / sum(tp + fp) ELSE 0.0 END",
        _precision,
        _sk("precision_score", zero_division=0),
        refused_as_primary="one sure match",
    ),
    Metric(
        "recall",
        M,
        "recall of matches",
        "CASE WHEN sum(tp + fn) > 0 THEN CAST(sum(tp) AS DOUBLE) / sum(tp + fn) ELSE 0.0 END",
        _recall,
        _sk("recall_score", zero_division=0),
        refused_as_primary='"everything matches"',
    ),
    Metric(
        "average_precision",
        M,
        "average precision of the score",
        None,
        None,
        _ap_sklearn,
        needs_score=True,
        sql_file="average_precision.sql",
        refused_as_primary="a submission without the optional `score` column has none",
    ),
)

METRICS: dict[str, Metric] = {m.name: m for m in _ENTRIES}


def metrics_of(task_type: TaskType) -> tuple[Metric, ...]:
    """The metrics scored for a task type, in display order."""
    return tuple(m for m in _ENTRIES if m.task_type is TaskType(task_type))


def count_metrics(task_type: TaskType) -> tuple[Metric, ...]:
    return tuple(m for m in metrics_of(task_type) if m.sql is not None)


def primary_metrics(task_type: TaskType) -> tuple[str, ...]:
    """The metrics a task of this type may rank by (the first is the default)."""
    return tuple(m.name for m in metrics_of(task_type) if m.refused_as_primary is None)


def check_primary(task_type: TaskType, name: str) -> None:
    """Raise ValueError, with the fix, when `name` cannot be a task's primary metric."""
    task_type = TaskType(task_type)
    allowed = ", ".join(primary_metrics(task_type))
    metric = METRICS.get(name)
    if metric is None or metric.task_type is not task_type:
        raise ValueError(
            f"primary_metric '{name}' is not defined for {task_type.value} tasks. "
            f"Fix: in task.yaml set `primary_metric:` to one of {allowed}"
        )
    if metric.refused_as_primary is not None:
        if metric.needs_score:
            why = f"{metric.refused_as_primary}, so it cannot rank every team"
            raise ValueError(
                f"primary_metric '{name}' is refused: {why}. Fix: in task.yaml set `primary_metric:` to one of "
                f"{allowed}; {name} is still scored and shown"
            )
        raise ValueError(
            f"primary_metric '{name}' is refused: "
            + TRIVIAL.format(how=metric.refused_as_primary, allowed=allowed, name=name)
        )


def class_counts(task_type: TaskType, truth, pred) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class (tp, fp, fn) of predictions, in the registry's convention: classification over
    the classes in the truth or the predictions, `None` predictions wrong and of no class;
    matching the positive class only (`None` counts as 0)."""
    if TaskType(task_type) is TaskType.matching:
        t = _is_match(truth)
        p = _is_match(pred)
        return (
            np.array([np.sum(t & p)], np.int64),
            np.array([np.sum(~t & p)], np.int64),
            np.array([np.sum(t & ~p)], np.int64),
        )
    truth = np.asarray(truth, dtype=object)
    pred = np.asarray(pred, dtype=object)
    seen = [v for v in pred if v is not None]
    classes, codes = np.unique(np.concatenate([truth, np.asarray(seen, dtype=object)]).astype(str), return_inverse=True)
    k = len(classes)
    t_code = codes[: len(truth)]
    p_code = np.full(len(pred), -1, np.int64)
    mask = np.array([v is not None for v in pred], dtype=bool)
    p_code[mask] = codes[len(truth) :]
    hit = p_code == t_code
    tp = np.bincount(t_code[hit], minlength=k)
    fn = np.bincount(t_code[~hit], minlength=k)
    fp = np.bincount(p_code[~hit & (p_code >= 0)], minlength=k)
    return tp.astype(np.int64), fp.astype(np.int64), fn.astype(np.int64)


def _is_match(values) -> np.ndarray:
    a = np.asarray(values)
    if a.dtype != object:
        return a.astype(np.int64) == 1
    return np.array([v is not None and int(v) == 1 for v in a], dtype=bool)


def score(name: str, truth, pred) -> float:
    """A count metric of predictions (tuning, reports), through the registry's numpy formula."""
    metric = METRICS[name]
    return metric.value(*class_counts(metric.task_type, truth, pred))


def scores(task_type: TaskType, truth, pred) -> dict[str, float]:
    """Every count metric of a task type, from one set of confusion counts."""
    counts = class_counts(task_type, truth, pred)
    return {m.name: m.value(*counts) for m in count_metrics(task_type)}
