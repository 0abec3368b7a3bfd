"""Train params small enough for a unit test: the same code paths, a few short trials."""

from __future__ import annotations

import pytest

QUICK_TRAIN = {
    "n_trials": 3,
    "portfolio": [{"depth": 4, "l2_leaf_reg": 4.56, "learning_rate": 0.15, "auto_class_weights": "None"}],
    "ensemble_candidates": 3,
    "ensemble_size": 5,
    "max_iterations": 40,
    "early_stopping_rounds": 10,
    "default_iterations": 30,
    "pruning_warmup_iterations": 10,
    "tpe_startup_trials": 2,
    "image_pca_dims": 4,
    "text_pca_dims": 2,
    "bow_max_tokens": 20,
    "thread_count": 1,
}


@pytest.fixture
def quick(project_params):
    return project_params.train.model_copy(update=QUICK_TRAIN)
