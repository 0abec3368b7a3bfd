"""The metric registry: its numpy formulas against scikit-learn, its SQL against its numpy
formulas, and the primary metrics it refuses."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.core.manifest import TaskManifest
from tasks.core.metrics import METRICS, check_primary, class_counts, count_metrics, metrics_of, primary_metrics
from tasks.core.schema import TaskType

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def predictions(draw, task_type: TaskType):
    n = draw(st.integers(1, 30))
    values = st.sampled_from(["a", "b", "c", "d"]) if task_type is TaskType.classification else st.sampled_from([0, 1])
    truth = draw(st.lists(values, min_size=n, max_size=n))
    pred = draw(st.lists(values, min_size=n, max_size=n))
    return truth, pred


@SETTINGS
@given(st.sampled_from(list(TaskType)).flatmap(lambda t: st.tuples(st.just(t), predictions(t))))
def test_every_count_metric_matches_its_sklearn_cross_check(case):
    task_type, (truth, pred) = case
    counts = class_counts(task_type, truth, pred)
    for m in count_metrics(task_type):
        assert math.isclose(m.value(*counts), m.sklearn(truth, pred), abs_tol=1e-12), m.name


@SETTINGS
@given(st.sampled_from(list(TaskType)).flatmap(lambda t: st.tuples(st.just(t), predictions(t))))
def test_every_count_metric_sql_is_its_numpy_formula(case):
    """The SQL the scorer and the bootstrap run equals the formula tuning uses, on the same counts
    (with a row of zeros added: a class absent from a resample counts for nothing)."""
    task_type, (truth, pred) = case
    tp, fp, fn = class_counts(task_type, truth, pred)
    con = duckdb.connect()
    rows = pa.table({"tp": np.r_[tp, 0], "fp": np.r_[fp, 0], "fn": np.r_[fn, 0]})
    con.register("class_counts", rows)
    for m in count_metrics(task_type):
        got = con.execute(f"SELECT CAST(({m.sql}) AS DOUBLE) FROM class_counts").fetchall()[0][0]
        assert math.isclose(got, m.value(np.r_[tp, 0], np.r_[fp, 0], np.r_[fn, 0]), abs_tol=1e-12), m.name
        assert math.isclose(got, m.value(tp, fp, fn), abs_tol=1e-12), m.name
    con.close()


def test_missing_predictions_are_wrong_and_of_no_class():
    tp, fp, fn = class_counts(TaskType.classification, ["a", "b", "b"], ["a", None, "a"])
    assert (tp.tolist(), fp.tolist(), fn.tolist()) == ([1, 0], [1, 0], [0, 2])  # classes a, b
    assert METRICS["accuracy"].value(tp, fp, fn) == pytest.approx(1 / 3)
    tp, fp, fn = class_counts(TaskType.matching, [1, 1, 0], [1, None, 1])
    assert (tp.tolist(), fp.tolist(), fn.tolist()) == ([1], [1], [1])


def test_the_registry_is_the_one_list_of_metrics():
    assert [m.name for m in metrics_of(TaskType.classification)] == ["macro_f1", "accuracy", "balanced_accuracy"]
    assert [m.name for m in metrics_of(TaskType.matching)] == ["f1", "precision", "recall", "average_precision"]
    assert primary_metrics(TaskType.classification) == ("macro_f1", "accuracy", "balanced_accuracy")
    assert primary_metrics(TaskType.matching) == ("f1",)
    assert all(m.direction == "max" for m in METRICS.values())
    assert METRICS["average_precision"].needs_score and METRICS["average_precision"].sql is None


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("recall", ['"everything matches"', "task.yaml", "`primary_metric: f1`"]),
        ("precision", ["one sure match", "task.yaml", "`primary_metric: f1`"]),
        ("average_precision", ["`score` column", "task.yaml", "f1"]),
    ],
)
def test_metrics_a_trivial_submission_maximises_are_refused_as_primary(name, words):
    with pytest.raises(ValueError) as info:
        check_primary(TaskType.matching, name)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_an_unknown_or_mismatched_primary_metric_names_the_field_and_the_choices():
    with pytest.raises(ValueError, match=r"not defined for classification tasks.*task.yaml.*macro_f1, accuracy"):
        check_primary(TaskType.classification, "f1")
    check_primary(TaskType.classification, "balanced_accuracy")


def test_the_manifest_refuses_recall_as_primary_metric():
    base = {
        "id": "pairs",
        "title": "Pairs",
        "type": "matching",
        "track": "matching",
        "primary_metric": "recall",
        "files": {},
    }
    with pytest.raises(Exception, match="everything matches"):
        TaskManifest.model_validate(base)
