"""The paired bootstrap against a direct numpy/sklearn bootstrap of the same resamples: task
intervals, track-mean intervals, rank intervals, the paired test per adjacent pair and the tie
groups (recomputed by brute force), on small random boards scored by the real scoring SQL."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from tasks.board.bootstrap import EPS, bootstrap, plan_table, resample_indices, tie_groups
from tasks.board.ranking import TaskMeta
from tasks.core.schema import TaskType
from tasks.scoring.evaluate import GROUPS_SQL, run_details

CLASSES = ["a", "b", "c"]
TASKS = [
    TaskMeta("cls", "t", "macro_f1", "classes", "classification"),
    TaskMeta("pairs", "t", "f1", "pairs", "matching"),
]


def scored(task_type: TaskType, labels: list, splits: list, grp: list, preds: list[list]) -> tuple[pa.Table, pa.Table]:
    """The evaluate stage's bootstrap counts and groups of one task, through its own SQL."""
    con = duckdb.connect()
    keys = [f"k{i:03d}" for i in range(len(labels))]
    label_type = pa.string() if task_type is TaskType.classification else pa.int32()
    con.register(
        "hidden_labels",
        pa.table(
            {
                "key": keys,
                "label": pa.array(labels, label_type),
                "split": splits,
                "grp": pa.array(grp, pa.int32()),
            }
        ),
    )
    rows = [(f, keys[i], p) for f, pred in enumerate(preds) for i, p in enumerate(pred) if p is not None]
    con.register(
        "judged_rows",
        pa.table(
            {
                "file_id": pa.array([r[0] for r in rows], pa.int32()),
                "key": pa.array([r[1] for r in rows], pa.string()),
                "pred": pa.array([r[2] for r in rows], label_type),
            }
        ),
    )
    con.register("scored_files", pa.table({"file_id": pa.array(range(len(preds)), pa.int32())}))
    con.execute(
        "CREATE TABLE judged AS SELECT j.file_id, h.split, h.grp, h.label AS truth, j.pred, CAST(NULL AS DOUBLE) AS score "
        "FROM judged_rows AS j JOIN hidden_labels AS h ON h.key = j.key"
    )
    counts = run_details(con, task_type)["bootstrap_counts"]
    groups = con.sql(GROUPS_SQL).to_arrow_table()
    con.close()
    return counts, groups


@st.composite
def boards(draw):
    n_teams = draw(st.integers(2, 4))
    tasks = {}
    for meta in TASKS:
        n = draw(st.integers(3, 14))
        splits = ["public"] * n
        if meta.task_type == "classification":
            labels = draw(st.lists(st.sampled_from(CLASSES), min_size=n, max_size=n))
            grp = list(range(n))
            values = st.one_of(st.none(), st.sampled_from(CLASSES + ["z"]))
        else:
            labels = draw(st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n))
            grp = sorted(draw(st.lists(st.integers(0, max(1, n // 2)), min_size=n, max_size=n)))
            values = st.one_of(st.none(), st.sampled_from([0, 1]))
        preds = [draw(st.lists(values, min_size=n, max_size=n)) for _ in range(n_teams)]
        # a team may skip a task (it then counts 0 in the track mean), but not both
        covers = [draw(st.booleans()) or meta is TASKS[0] for _ in range(n_teams)]
        tasks[meta.task] = (labels, splits, grp, preds, covers)
    baseline = draw(st.integers(-1, n_teams - 1))  # -1: no baseline
    return n_teams, tasks, baseline, draw(st.integers(0, 2**16))


def metric_of(task_type: str, truth: list, pred: list) -> float:
    if task_type == "classification":
        label_set = sorted(set(truth) | {p for p in pred if p is not None})
        return f1_score(
            truth, [p if p is not None else "<none>" for p in pred], labels=label_set, average="macro", zero_division=0
        )
    return f1_score(truth, [p if p is not None else 0 for p in pred], zero_division=0)


def direct(n_teams, tasks, baseline, seed, reps, level):
    """The bootstrap written out: for each resample, concatenate the drawn groups' rows and score them with sklearn."""
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    values = {}  # (team, task) -> array over resamples
    for meta in TASKS:
        labels, splits, grp, preds, covers = tasks[meta.task]
        ids = np.unique(grp)
        idx = resample_indices(len(ids), reps, seed, meta.task, "public")
        members = {g: [i for i, x in enumerate(grp) if x == g] for g in ids}
        for team in range(n_teams):
            if not covers[team]:
                continue
            out = []
            for r in range(reps):
                rows = [i for g in ids[idx[r]] for i in members[g]]
                out.append(metric_of(meta.task_type, [labels[i] for i in rows], [preds[team][i] for i in rows]))
            values[(team, meta.task)] = np.array(out)
    means = {t: sum(values.get((t, m.task), np.zeros(reps)) for m in TASKS) / len(TASKS) for t in range(n_teams)}
    ranked = [t for t in range(n_teams) if t != baseline]
    point = {
        t: np.mean(
            [metric_of(m.task_type, tasks[m.task][0], tasks[m.task][3][t]) if tasks[m.task][4][t] else 0 for m in TASKS]
        )
        for t in ranked
    }
    order = sorted(ranked, key=lambda t: (-round(point[t], 12), t))
    ranks = {}
    for t in ranked:
        per_rep = [1 + sum(round(means[o][r], 12) > round(means[t][r], 12) for o in ranked) for r in range(reps)]
        ranks[t] = tuple(int(v) for v in np.quantile(per_rep, [lo_q, hi_q], method="inverted_cdf"))
    pairs = []
    for k in range(len(order) - 1):
        diff = means[order[k]] - means[order[k + 1]]
        lo, hi = np.quantile(diff, [lo_q, hi_q])
        pairs.append(
            {
                "track": "t",
                "upper": f"team{order[k]}",
                "lower": f"team{order[k + 1]}",
                "lo": lo,
                "hi": hi,
                "separated": lo > EPS,
            }
        )
    return values, means, ranks, order, pairs


SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@SETTINGS
@given(boards())
def test_the_bootstrap_equals_a_direct_numpy_sklearn_bootstrap(board):
    n_teams, tasks, baseline, seed = board
    reps, level = 40, 0.9
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    values, means, ranks, order, pairs = direct(n_teams, tasks, baseline, seed, reps, level)
    rank_of = {t: i + 1 for i, t in enumerate(order)}
    entries, all_counts, all_groups = [], [], []
    for meta in TASKS:
        labels, splits, grp, preds, covers = tasks[meta.task]
        counts, groups = scored(TaskType(meta.task_type), labels, splits, grp, preds)
        shas = [f"{meta.task}-{f}" for f in range(n_teams)]
        all_counts.append(
            pa.table(
                {
                    "task": [meta.task] * counts.num_rows,
                    "file_sha256": [shas[i] for i in counts.column("file_id").to_pylist()],
                }
                | {c: counts.column(c) for c in ("split", "grp", "truth", "pred", "n")}
            )
        )
        all_groups.append(
            pa.table({"task": [meta.task] * groups.num_rows} | {c: groups.column(c) for c in groups.column_names})
        )
        for team in range(n_teams):
            if covers[team]:
                entries.append(
                    {
                        "track": "t",
                        "team": f"team{team}",
                        "baseline": team == baseline,
                        "rank": rank_of.get(team),
                        "task": meta.task,
                        "file_sha256": shas[team],
                    }
                )
    u = bootstrap(
        pa.Table.from_pylist(entries),
        TASKS,
        pa.concat_tables(all_counts, promote_options="permissive"),
        pa.concat_tables(all_groups),
        ["public"],
        reps,
        seed,
        level,
    )
    for (team, task), v in values.items():
        lo, hi = u.intervals[("task", "t", f"team{team}", task, "public")]
        assert math.isclose(lo, np.quantile(v, lo_q), abs_tol=1e-9) and math.isclose(
            hi, np.quantile(v, hi_q), abs_tol=1e-9
        )
    for team, m in means.items():
        lo, hi = u.intervals[("track", "t", f"team{team}", None, "public")]
        assert math.isclose(lo, np.quantile(m, lo_q), abs_tol=1e-9) and math.isclose(
            hi, np.quantile(m, hi_q), abs_tol=1e-9
        )
    assert u.ranks == {("t", f"team{t}"): r for t, r in ranks.items()}
    assert [(p["upper"], p["lower"], p["separated"]) for p in u.pairs] == [
        (p["upper"], p["lower"], p["separated"]) for p in pairs
    ]
    for got, want in zip(u.pairs, pairs):
        assert math.isclose(got["lo"], want["lo"], abs_tol=1e-9) and math.isclose(got["hi"], want["hi"], abs_tol=1e-9)
    # tie groups by brute force: two ranked teams share a group iff no separated pair lies between them
    for a in order:
        for b in order:
            ra, rb = sorted((rank_of[a], rank_of[b]))
            between = [p["separated"] for p in pairs[ra - 1 : rb - 1]]
            assert (u.tie_groups[("t", f"team{a}")] == u.tie_groups[("t", f"team{b}")]) == (not any(between))


def test_the_plan_is_the_same_for_every_team_and_depends_on_task_part_and_seed():
    a = resample_indices(50, 20, 7, "cls", "public")
    assert (a == resample_indices(50, 20, 7, "cls", "public")).all()
    assert not (a == resample_indices(50, 20, 7, "cls", "private")).all()
    assert not (a == resample_indices(50, 20, 8, "cls", "public")).all()
    plan = plan_table(np.arange(100, 150), 20, 7, "cls", "public")
    assert plan.column("w").to_numpy().sum() == 20 * 50  # every resample draws as many groups as there are
    assert set(plan.column("grp").to_pylist()) <= set(range(100, 150))


def test_matching_resamples_whole_groups_of_linked_pairs():
    # two groups of linked pairs: a resample takes a group with all its pairs or none of them
    labels, splits, grp = [1, 1, 0, 0], ["public"] * 4, [0, 0, 1, 1]
    counts, groups = scored(TaskType.matching, labels, splits, grp, [[1, 1, 1, 1]])
    assert groups.to_pylist() == [
        {"split": "public", "grp": 0, "truth": "1", "n": 2},
        {"split": "public", "grp": 1, "truth": "0", "n": 2},
    ]
    entries = pa.Table.from_pylist(
        [{"track": "t", "team": "x", "baseline": False, "rank": 1, "task": "pairs", "file_sha256": "f"}]
    )
    counts = pa.table(
        {"task": ["pairs"] * counts.num_rows, "file_sha256": ["f"] * counts.num_rows}
        | {c: counts.column(c) for c in ("split", "grp", "truth", "pred", "n")}
    )
    groups = pa.table({"task": ["pairs"] * groups.num_rows} | {c: groups.column(c) for c in groups.column_names})
    u = bootstrap(entries, TASKS[1:], counts, groups, ["public"], 200, 3)
    values = set(np.round(u.replicates.column("value").to_numpy(), 9))
    # F1 over whole groups: both groups (2/3), only the true pairs (1), only the false ones (0)
    assert values <= {round(2 / 3, 9), 1.0, 0.0}


def test_tie_groups_start_below_each_separated_pair():
    entrants = [{"track": "t", "team": x, "rank": i + 1} for i, x in enumerate("abcd")] + [
        {"track": "t", "team": "base", "rank": None}
    ]
    pairs = [
        {"track": "t", "upper": "a", "separated": True},
        {"track": "t", "upper": "b", "separated": False},
        {"track": "t", "upper": "c", "separated": True},
    ]
    assert tie_groups(entrants, pairs) == {("t", "a"): 1, ("t", "b"): 2, ("t", "c"): 2, ("t", "d"): 3}


@pytest.mark.parametrize("reps", [0])
def test_no_resamples_no_intervals(reps):
    entries = pa.Table.from_pylist(
        [{"track": "t", "team": "x", "baseline": False, "rank": 1, "task": "cls", "file_sha256": "f"}]
    )
    empty = pa.table(
        {
            "task": pa.array([], pa.string()),
            "split": pa.array([], pa.string()),
            "grp": pa.array([], pa.int32()),
            "truth": pa.array([], pa.string()),
            "n": pa.array([], pa.int32()),
        }
    )
    counts = pa.table(
        {
            "task": pa.array([], pa.string()),
            "file_sha256": pa.array([], pa.string()),
            "split": pa.array([], pa.string()),
            "grp": pa.array([], pa.int32()),
            "truth": pa.array([], pa.string()),
            "pred": pa.array([], pa.string()),
            "n": pa.array([], pa.int32()),
        }
    )
    u = bootstrap(entries, TASKS[:1], counts, empty, ["public"], 10, 0)
    assert u.intervals == {} and u.pairs == []
