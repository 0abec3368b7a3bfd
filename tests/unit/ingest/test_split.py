"""Splits are seeded, stratified, and never let a record cross from train to test pairs."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.ingest.split import grouped_pair_split, pair_groups, stratified_mask


def test_stratified_mask_is_deterministic_and_proportional():
    labels = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 2 + ["d"])
    first = stratified_mask(labels, 0.3, seed=1)
    assert (first == stratified_mask(labels, 0.3, seed=1)).all()
    assert not (first == stratified_mask(labels, 0.3, seed=2)).all()
    assert first[labels == "a"].sum() == 15 and first[labels == "b"].sum() == 9
    assert first[labels == "c"].sum() == 1  # both sides keep one
    assert not first[labels == "d"].any()  # a singleton stays out of test
    assert stratified_mask(labels, 0.3, seed=1, singletons_selected=True)[labels == "d"].all()


@settings(max_examples=60, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 30), st.booleans()),
        min_size=4,
        max_size=200,
        unique_by=lambda p: p[:2],
    ),
    seed=st.integers(0, 10_000),
)
def test_grouped_split_never_shares_a_record(pairs, seed):
    left = np.array([p[0] for p in pairs])
    right = np.array([p[1] for p in pairs])
    labels = np.array([int(p[2]) for p in pairs])
    groups = pair_groups(left, right, 31, 31)
    split = grouped_pair_split(groups, labels, 0.3, seed)
    assert set(left[split.is_test]).isdisjoint(left[~split.is_test])
    assert set(right[split.is_test]).isdisjoint(right[~split.is_test])
    again = grouped_pair_split(groups, labels, 0.3, seed)
    assert (again.is_test == split.is_test).all()


def test_grouped_split_hits_its_target_with_many_small_groups():
    rng = np.random.default_rng(0)
    left = np.repeat(np.arange(300), 3)
    right = np.arange(900)
    labels = (rng.random(900) < 0.3).astype(int)
    split = grouped_pair_split(pair_groups(left, right, 300, 900), labels, 0.3, seed=5)
    assert abs(split.is_test.mean() - 0.3) < 0.02
    assert abs(labels[split.is_test].mean() - labels[~split.is_test].mean()) < 0.08


@settings(max_examples=80, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=2, max_size=12),
    positive=st.lists(st.booleans(), min_size=12, max_size=12),
    fraction=st.sampled_from([0.1, 0.3, 0.5, 0.9]),
    seed=st.integers(0, 10_000),
)
def test_grouped_split_keeps_a_group_of_each_stratum_on_each_side(sizes, positive, fraction, seed):
    """e.g. public/private: with two or more groups holding positives, both parts get positives."""
    groups = np.repeat(np.arange(len(sizes)), sizes)
    labels = np.concatenate([[int(positive[g])] + [0] * (n - 1) for g, n in enumerate(sizes)])
    split = grouped_pair_split(groups, labels, fraction, seed)
    for stratum in (True, False):
        members = [g for g in range(len(sizes)) if positive[g] == stratum]
        if len(members) >= 2:
            sides = {bool(split.is_test[groups == g][0]) for g in members}
            assert sides == {True, False}
