"""Seeded, deterministic splits: stratified by label for rows, grouped for pairs.

sklearn's StratifiedShuffleSplit refuses classes with a single row, which real
contributions have; these few lines keep such rows in train and stay reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def stratified_mask(labels: np.ndarray, fraction: float, seed: int, singletons_selected: bool = False) -> np.ndarray:
    """True for the rows drawn into the `fraction` side, about `fraction` of every class.

    A class with two or more rows keeps at least one row on each side; a class with one
    row goes to the other side unless `singletons_selected`.
    """
    codes, classes = pd.factorize(np.asarray(labels), sort=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(classes) + 1))
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(codes), dtype=bool)
    for k in range(len(classes)):
        idx = order[bounds[k] : bounds[k + 1]]
        idx = idx[rng.permutation(len(idx))]
        if len(idx) == 1:
            mask[idx] = singletons_selected
            continue
        n = int(np.clip(round(len(idx) * fraction), 1, len(idx) - 1))
        mask[idx[:n]] = True
    return mask


@dataclass
class GroupedSplit:
    is_test: np.ndarray  # per pair
    n_groups: int
    largest_group: int


def pair_groups(left_codes: np.ndarray, right_codes: np.ndarray, n_left: int, n_right: int) -> np.ndarray:
    """Connected components of the bipartite record graph: pairs sharing a record share a group."""
    n = n_left + n_right
    graph = coo_matrix((np.ones(len(left_codes)), (left_codes, right_codes + n_left)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    return component[left_codes]


def grouped_pair_split(groups: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> GroupedSplit:
    """Draw whole groups to one side until each stratum (groups with a positive, groups without) holds
    about `fraction` of its pairs there; a stratum of two or more groups keeps a group on each side.

    Used twice by ingest: train/test, then public/private within test (so that feedback on public
    pairs says nothing about private pairs sharing their records).
    """
    rng = np.random.default_rng(seed)
    unique, sizes = np.unique(groups, return_counts=True)
    has_positive = np.zeros(len(unique), dtype=bool)
    positives_per_group = np.bincount(
        np.searchsorted(unique, groups), weights=labels.astype(float), minlength=len(unique)
    )
    has_positive[positives_per_group > 0] = True
    chosen = np.zeros(len(unique), dtype=bool)
    for stratum in (True, False):
        members = np.flatnonzero(has_positive == stratum)
        members = members[rng.permutation(len(members))]
        target = round(sizes[members].sum() * fraction)
        taken = 0
        for g in members:
            if taken + sizes[g] <= target or taken == 0 and sizes[g] <= 2 * target:
                chosen[g] = True
                taken += sizes[g]
            if taken >= target:
                break
        if len(members) >= 2:  # e.g. the positives: both sides need some to score anything
            picked = members[chosen[members]]
            if len(picked) == 0:
                chosen[members[np.argmin(sizes[members])]] = True
            elif len(picked) == len(members):
                chosen[picked[np.argmin(sizes[picked])]] = False
    is_test = chosen[np.searchsorted(unique, groups)]
    return GroupedSplit(is_test=is_test, n_groups=len(unique), largest_group=int(sizes.max()))
