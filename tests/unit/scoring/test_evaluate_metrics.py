"""Every SQL metric against sklearn on random inputs, edge cases included: a class never
predicted, no positives, predictions missing for some or all rows, tied scores, several files
scored in one query."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, precision_score, recall_score

from tasks.core.schema import TaskType
from tasks.scoring.evaluate import METRICS, run_metrics

SPLITS = ("public", "private")
MISSING = "<no prediction>"


def run_sql(task_type: TaskType, labels: list, splits: list[str], files: list[dict], threads: int = 1) -> dict:
    """files: [{"pred": [value or None per row], "score": [float or None] or None}] -> {(file, split, metric): value}"""
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    keys = [f"k{i:04d}" for i in range(len(labels))]
    label_type = pa.string() if task_type is TaskType.classification else pa.int32()
    con.register(
        "hidden_labels",
        pa.table(
            {
                "key": keys,
                "label": pa.array(labels, label_type),
                "split": splits,
                "grp": pa.array(range(len(keys)), pa.int32()),
            }
        ),
    )
    rows = {"file_id": [], "key": [], "pred": [], "score": []}
    for fid, f in enumerate(files):
        for i, p in enumerate(f["pred"]):
            if p is not None:
                rows["file_id"].append(fid)
                rows["key"].append(keys[i])
                rows["pred"].append(p)
                rows["score"].append(f["score"][i] if f["score"] is not None else None)
    con.register(
        "predictions",
        pa.table(
            {
                "file_id": pa.array(rows["file_id"], pa.int32()),
                "key": pa.array(rows["key"], pa.string()),
                "pred": pa.array(rows["pred"], label_type),
                "score": pa.array(rows["score"], pa.float64()),
            }
        ),
    )
    con.register(
        "scored_files",
        pa.table(
            {"file_id": pa.array(range(len(files)), pa.int32()), "has_score": [f["score"] is not None for f in files]}
        ),
    )
    out = run_metrics(con, task_type)
    con.close()
    return {
        (f, s, m): v
        for f, s, m, v in zip(*(out.column(c).to_pylist() for c in ("file_id", "split", "metric", "value")))
    }


def reference(task_type: TaskType, labels: list, splits: list[str], files: list[dict]) -> dict:
    expected = {}
    parts = {s: [i for i, x in enumerate(splits) if x == s] for s in SPLITS}
    parts["all"] = list(range(len(labels)))
    for fid, f in enumerate(files):
        for split, idx in parts.items():
            if not idx:
                continue
            y_true = [labels[i] for i in idx]
            if task_type is TaskType.classification:
                y_pred = [f["pred"][i] if f["pred"][i] is not None else MISSING for i in idx]
                label_set = sorted(set(y_true) | {p for p in y_pred if p != MISSING})
                expected[(fid, split, "accuracy")] = accuracy_score(y_true, y_pred)
                expected[(fid, split, "macro_f1")] = f1_score(
                    y_true, y_pred, labels=label_set, average="macro", zero_division=0
                )
                support = sorted(set(y_true))  # balanced accuracy: mean recall over the true classes
                expected[(fid, split, "balanced_accuracy")] = float(
                    np.mean(recall_score(y_true, y_pred, labels=support, average=None, zero_division=0))
                )
            else:
                y_pred = [f["pred"][i] if f["pred"][i] is not None else 0 for i in idx]
                expected[(fid, split, "precision")] = precision_score(y_true, y_pred, zero_division=0)
                expected[(fid, split, "recall")] = recall_score(y_true, y_pred, zero_division=0)
                expected[(fid, split, "f1")] = f1_score(y_true, y_pred, zero_division=0)
                if f["score"] is not None:
                    scored = [i for i in idx if f["pred"][i] is not None]
                    pos_total = sum(y_true)
                    pos_scored = sum(labels[i] for i in scored)
                    if pos_total == 0 or pos_scored == 0:
                        ap = 0.0
                    else:  # unscored true matches are never retrieved: recall is scaled down
                        ap = (
                            average_precision_score([labels[i] for i in scored], [f["score"][i] for i in scored])
                            * pos_scored
                            / pos_total
                        )
                    expected[(fid, split, "average_precision")] = ap
    return expected


def assert_same(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-12), (key, got[key], value)


CLASSES = ["lamp", "mug", "vase", "bowl", "rug"]


@st.composite
def classification_case(draw):
    n = draw(st.integers(1, 40))
    truth_classes = draw(st.lists(st.sampled_from(CLASSES), min_size=1, max_size=5, unique=True))
    labels = draw(st.lists(st.sampled_from(truth_classes), min_size=n, max_size=n))
    splits = draw(st.lists(st.sampled_from(SPLITS), min_size=n, max_size=n))
    files = []
    for _ in range(draw(st.integers(1, 3))):
        coverage = draw(st.sampled_from([0.0, 0.5, 0.9, 1.0]))
        pred = [
            draw(st.sampled_from(CLASSES + ["unseen"])) if draw(st.floats(0, 1)) < coverage else None for _ in range(n)
        ]
        files.append({"pred": pred, "score": None})
    return labels, splits, files


@st.composite
def matching_case(draw):
    n = draw(st.integers(1, 40))
    positive_rate = draw(st.sampled_from([0.0, 0.3, 0.7, 1.0]))
    labels = [int(draw(st.floats(0, 1)) < positive_rate) for _ in range(n)]
    splits = draw(st.lists(st.sampled_from(SPLITS), min_size=n, max_size=n))
    files = []
    for _ in range(draw(st.integers(1, 3))):
        coverage = draw(st.sampled_from([0.0, 0.6, 1.0]))
        present = [draw(st.floats(0, 1)) < coverage for _ in range(n)]
        pred = [draw(st.sampled_from([0, 1])) if p else None for p in present]
        score = None
        if draw(st.booleans()):
            values = (
                st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])
                if draw(st.booleans())
                else st.floats(0, 1, allow_nan=False)
            )
            score = [draw(values) if p else None for p in present]
        files.append({"pred": pred, "score": score})
    return labels, splits, files


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(classification_case())
@example(
    (["mug", "mug", "vase"], ["public", "private", "public"], [{"pred": ["mug", "mug", "mug"], "score": None}])
)  # a class never predicted
@example((["mug", "vase"], ["public", "public"], [{"pred": [None, None], "score": None}]))  # all predictions missing
@example(
    (["mug"], ["private"], [{"pred": ["lamp"], "score": None}])
)  # a predicted class absent from the truth; no public part
def test_classification_metrics_match_sklearn(case):
    labels, splits, files = case
    got = run_sql(TaskType.classification, labels, splits, files)
    assert {k[2] for k in got} <= set(METRICS[TaskType.classification])
    assert_same(got, reference(TaskType.classification, labels, splits, files))


@SETTINGS
@given(matching_case())
@example(([0, 0, 0], ["public", "private", "public"], [{"pred": [1, 0, 1], "score": [0.9, 0.1, 0.5]}]))  # no positives
@example(
    ([1, 0, 1], ["public", "public", "private"], [{"pred": [None, None, None], "score": [None, None, None]}])
)  # all missing
@example(([1, 0, 1, 0], ["public"] * 4, [{"pred": [1, 1, 0, 0], "score": [0.5, 0.5, 0.2, 0.1]}]))  # tied scores
@example(([1, 1, 0], ["public"] * 3, [{"pred": [0, 0, 0], "score": None}]))  # nothing predicted positive
def test_matching_metrics_match_sklearn(case):
    labels, splits, files = case
    got = run_sql(TaskType.matching, labels, splits, files)
    assert {k[2] for k in got} <= set(METRICS[TaskType.matching])
    assert_same(got, reference(TaskType.matching, labels, splits, files))


@pytest.mark.parametrize("task_type", [TaskType.classification, TaskType.matching])
def test_results_do_not_depend_on_the_number_of_threads(task_type):
    rng = np.random.default_rng(7)
    n = 20_000
    if task_type is TaskType.classification:
        labels = rng.choice(CLASSES, n).tolist()
        files = [{"pred": rng.choice(CLASSES, n).tolist(), "score": None} for _ in range(6)]
    else:
        labels = (rng.random(n) < 0.2).astype(int).tolist()
        files = [
            {"pred": (rng.random(n) < 0.3).astype(int).tolist(), "score": rng.random(n).tolist()} for _ in range(6)
        ]
    splits = rng.choice(SPLITS, n).tolist()
    one = run_sql(task_type, labels, splits, files, threads=1)
    many = run_sql(task_type, labels, splits, files, threads=4)
    assert one == many, "exact equality: sums are DECIMAL, so no thread schedule changes a bit"
