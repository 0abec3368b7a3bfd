"""Tuning: metrics, thresholds, folds, storage, the study and its reproducibility."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from sklearn.metrics import f1_score

from tasks.core.errors import InputError
from tasks.core.metrics import score as metric
from tasks.core.metrics import scores
from tasks.core.params import SearchDimension
from tasks.core.schema import TaskType
from tasks.train.features import pair_groups
from tasks.train.stage import prepare
from tasks.train.tune import (
    Problem,
    best_threshold,
    choose_decision,
    decide_classes,
    grouped_folds,
    open_storage,
    refit_iterations,
    stratified_folds,
    suggest,
    tune,
)
from tests.synthetic import classification_release, matching_release


@pytest.fixture
def quick(quick):
    return quick.model_copy(update={"n_trials": 4})


def test_tuning_scores_with_the_registry_which_matches_sklearn():
    rng = np.random.default_rng(0)
    truth = rng.choice(list("abcd"), 200)
    pred = np.where(rng.random(200) < 0.6, truth, rng.choice(list("abce"), 200))
    assert metric("macro_f1", truth, pred) == pytest.approx(f1_score(truth, pred, average="macro"))
    t, p = rng.integers(0, 2, 100), rng.integers(0, 2, 100)
    assert scores(TaskType.matching, t, p)["f1"] == pytest.approx(f1_score(t, p))


def test_best_threshold_maximises_f1_and_sits_between_scores():
    truth = np.array([1, 1, 0, 1, 0, 0])
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.1])
    threshold, f1 = best_threshold(truth, score)
    assert 0.2 < threshold < 0.6
    assert f1 == pytest.approx(metric("f1", truth, (score >= threshold).astype(int)))
    assert f1 == pytest.approx(6 / 7)
    assert best_threshold(np.zeros(3, int), np.array([0.1, 0.5, 0.9])) == (0.5, 0.0)


def test_stratified_folds_keep_a_lone_class_in_the_fit_part(quick):
    y = np.array(["a"] * 10 + ["b"] * 6 + ["c"])
    folds = stratified_folds(y, quick.model_copy(update={"validation": "cv", "cv_folds": 3}))
    assert len(folds) == 3
    assert sorted(np.concatenate([v for _, v in folds]).tolist()) == list(range(16))  # every row but 'c' validated once
    assert all(16 in fit for fit, _ in folds)
    ((fit, val),) = stratified_folds(y, quick.model_copy(update={"validation": "holdout", "validation_fraction": 0.3}))
    assert len(val) == 3 + 2 and set(fit) | set(val) == set(range(17))
    again = stratified_folds(y, quick.model_copy(update={"validation": "holdout", "validation_fraction": 0.3}))
    assert np.array_equal(again[0][1], val)


def test_grouped_folds_never_split_a_group(quick):
    groups = np.repeat(np.arange(12), 3)
    for mode in ("holdout", "cv"):
        for fit, val in grouped_folds(groups, quick.model_copy(update={"validation": mode})):
            assert not set(groups[fit]) & set(groups[val])


def test_too_small_for_validation_is_refused(quick):
    with pytest.raises(InputError):
        grouped_folds(np.zeros(5, int), quick.model_copy(update={"validation": "cv"}))


def test_prior_power_lets_rare_classes_win():
    score = np.array([[0.6, 0.4], [0.7, 0.3], [0.2, 0.8]])
    classes = np.array(["common", "rare"], dtype=object)
    priors = np.array([0.9, 0.1])
    assert list(decide_classes(score, classes, priors, 0.0)) == ["common", "common", "rare"]
    assert list(decide_classes(score, classes, priors, 1.0)) == ["rare", "rare", "rare"]


def test_refit_scales_rounds_to_the_whole_train(quick):
    assert refit_iterations(74, quick.model_copy(update={"validation": "holdout", "validation_fraction": 0.25})) == 100
    assert refit_iterations(99, quick.model_copy(update={"validation": "cv", "cv_folds": 4})) == 134


def test_suggest_follows_the_space():
    space = {
        "depth": SearchDimension(type="int", low=3, high=5),
        "lr": SearchDimension(type="float", low=0.01, high=0.1, log=True),
        "w": SearchDimension(type="categorical", choices=["None", "Balanced"]),
    }
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        params = suggest(study.ask(), space)
        assert isinstance(params["depth"], int) and 3 <= params["depth"] <= 5
        assert 0.01 <= params["lr"] <= 0.1 and params["w"] in ("None", "Balanced")


def test_journal_storage_is_shared(tmp_path):
    url = f"journal:{tmp_path / 'studies' / 'optuna.log'}"
    a = optuna.create_study(storage=open_storage(url), study_name="s", direction="maximize")
    a.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    b = optuna.load_study(storage=open_storage(url), study_name="s")
    assert len(b.trials) == 2
    assert open_storage(None) is None and open_storage("sqlite:///x.db") == "sqlite:///x.db"


def test_tuning_starts_from_catboost_defaults_and_is_reproducible(tmp_path, quick):
    classification_release(tmp_path)
    _, problem = prepare("toy_items", tmp_path / "public", tmp_path / "embeddings", quick)
    first = tune(problem, quick, "macro_f1", first_trial={"learning_rate": 0.123})
    second = tune(problem, quick, "macro_f1", first_trial={"learning_rate": 0.123})
    assert first.trials.loc[0, "params_depth"] == 6 and first.trials.loc[0, "params_learning_rate"] == pytest.approx(
        0.123
    )
    assert first.n_complete + first.n_pruned == quick.n_trials and first.stopped_by == "n_trials"
    assert first.best_params == second.best_params and first.best_value == second.best_value
    assert first.trials["value"].equals(second.trials["value"])


def test_matching_tuning_tunes_a_threshold(tmp_path, quick):
    matching_release(tmp_path)
    release, problem = prepare("toy_pairs", tmp_path / "public", tmp_path / "embeddings", quick)
    assert len(set(pair_groups(release))) > 3
    result = tune(problem, quick, "f1")
    assert result.validation.decision is not None and 0 < result.validation.decision < 1
    assert result.best_value > 0.5


def _three_folds(task_type: TaskType, truth: np.ndarray, decision: str) -> Problem:
    """A problem of 3 folds of 10 pooled rows each (only folds, labels and the rule are read)."""
    rows = np.arange(len(truth))
    folds = tuple((np.setdiff1d(rows, rows[k::3]), rows[k::3]) for k in range(3))
    pooled = np.concatenate([val for _, val in folds])
    return Problem("t", task_type, None, truth[np.argsort(pooled)], folds, "CPU", decision)  # type: ignore[arg-type]


def test_a_threshold_is_kept_only_where_tuning_it_on_other_folds_helps():
    # pooled out-of-fold scores, fold by fold: separable at 0.5 but for two positives at 0.30
    # and 0.31 in fold 1 and one negative at 0.35 in fold 2. On all rows a threshold of 0.2
    # wins (one false positive instead of two misses); tuned on two folds and applied to the
    # third it loses to 0.5 (fold 1's positives are missed anyway, fold 2's negative is taken)
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0, 1, 1] + [1, 1, 1, 0, 0, 0, 0, 0, 0, 0] + [1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    score = np.where(truth == 1, 0.9, 0.1)
    score[8], score[9], score[13] = 0.30, 0.31, 0.35
    tuned = choose_decision(_three_folds(TaskType.matching, truth, "tuned"), "f1", truth, score, None)
    assert tuned == pytest.approx(0.2)
    assert choose_decision(_three_folds(TaskType.matching, truth, "checked"), "f1", truth, score, None) == 0.5
    assert choose_decision(_three_folds(TaskType.matching, truth, "fixed"), "f1", truth, score, None) == 0.5
    # every fold's positives scored low: tuning the threshold helps out of fold too, and is kept
    shifted = np.where(truth == 1, 0.3, 0.1)
    checked = choose_decision(_three_folds(TaskType.matching, truth, "checked"), "f1", truth, shifted, None)
    assert checked == pytest.approx(0.2)


def test_a_class_prior_power_is_checked_fold_by_fold_too():
    # a rare class "b" whose probability is always second: only a prior correction predicts it,
    # in every fold, so the checked rule keeps the tuned power
    truth = np.array((["a"] * 8 + ["b"] * 2) * 3)
    classes = np.array(["a", "b"])
    score = np.where((truth == "b")[:, None], [0.6, 0.4], [0.9, 0.1])
    problem = _three_folds(TaskType.classification, truth, "checked")
    assert choose_decision(problem, "macro_f1", truth, score, classes) > 0
    fixed = _three_folds(TaskType.classification, truth, "fixed")
    assert choose_decision(fixed, "macro_f1", truth, score, classes) == 0.0


def test_ensemble_selection_starts_from_the_best_member_and_never_scores_below_it(tmp_path, quick):
    from tasks.train.tune import Member, select_ensemble

    matching_release(tmp_path)
    _, problem = prepare("toy_pairs", tmp_path / "public", tmp_path / "embeddings", quick)
    rng = np.random.default_rng(0)
    truth = problem.y[problem.validation_rows]
    good = np.clip(truth * 0.6 + rng.normal(0.2, 0.25, len(truth)), 0, 1)
    other = np.clip(truth * 0.6 + rng.normal(0.2, 0.25, len(truth)), 0, 1)  # as good, independent errors
    noise = rng.random(len(truth))
    members = [Member("noise", "features", noise), Member("good", "features", good), Member("other", "features", other)]
    ensemble = select_ensemble(problem, "f1", members, rounds=10)
    singles = [select_ensemble(problem, "f1", [m], 1).validation.score for m in members]
    assert ensemble.validation.score >= max(singles)
    assert ensemble.history[0] == pytest.approx(max(singles))  # round one: the best single member
    assert ensemble.weights.sum() == pytest.approx(1.0)
    assert ensemble.weights[0] < max(ensemble.weights)  # the noise is not what it leans on


def _false_alarms(fold_rows: dict[int, list[int]]) -> np.ndarray:
    """Pooled match scores of 3 folds x 10 rows (4 positives, 6 negatives each): right and sure
    everywhere (0.9 / 0.1) but for false alarms (0.9) on the given negatives of each fold."""
    score = np.tile(np.array([0.9] * 4 + [0.1] * 6), 3)
    for fold, rows in fold_rows.items():
        score[[10 * fold + r for r in rows]] = 0.9
    return score


def test_an_ensemble_that_only_wins_on_its_own_rows_is_refused_for_the_defaults():
    from tasks.train.tune import DEFAULTS_MEMBER, Member, checked_ensemble, held_out_score

    truth = np.tile(np.array([1] * 4 + [0] * 6), 3)
    problem = _three_folds(TaskType.matching, truth, "fixed")
    # the defaults raise 4 false alarms in fold 1; "lucky" none there, but one in each other fold:
    # on all rows lucky wins (2 false alarms against 4), yet selected on two folds it is picked
    # exactly where it then loses (folds 2 and 3), and the defaults where lucky would have won
    defaults = Member(DEFAULTS_MEMBER, "features", _false_alarms({0: [4, 5, 6, 7]}))
    lucky = Member("lucky", "features", _false_alarms({1: [4], 2: [4]}))
    chosen = checked_ensemble(problem, "f1", [defaults, lucky], rounds=5, fallback=DEFAULTS_MEMBER)
    assert [m.name for m, _ in chosen.used()] == [DEFAULTS_MEMBER]
    assert chosen.check is not None and chosen.check.kept == DEFAULTS_MEMBER
    recorded = chosen.check.as_json()  # what ensemble.json keeps
    assert recorded["held_out_ensemble"] == pytest.approx(24 / 30)  # 6 false alarms held out
    assert recorded[f"held_out_{DEFAULTS_MEMBER}"] == pytest.approx(24 / 28)
    assert recorded["validation_of_the_refused_ensemble"] == pytest.approx(24 / 26)
    assert chosen.check.describe() == (
        f"held out, fold by fold: ensemble {24 / 30:.4f}, {DEFAULTS_MEMBER} {24 / 28:.4f}; kept {DEFAULTS_MEMBER}"
    )
    assert held_out_score(problem, "f1", [defaults, lucky], 5) == pytest.approx(24 / 30)
    assert chosen.validation.score == pytest.approx(24 / 28)  # the defaults' own validation score


def test_an_ensemble_that_wins_on_every_held_out_fold_is_kept():
    from tasks.train.tune import DEFAULTS_MEMBER, Member, checked_ensemble

    truth = np.tile(np.array([1] * 4 + [0] * 6), 3)
    problem = _three_folds(TaskType.matching, truth, "fixed")
    defaults = Member(DEFAULTS_MEMBER, "features", _false_alarms({0: [4, 5], 1: [4, 5], 2: [4, 5]}))
    better = Member("better", "features", _false_alarms({}))
    chosen = checked_ensemble(problem, "f1", [defaults, better], rounds=5, fallback=DEFAULTS_MEMBER)
    assert chosen.check is not None and chosen.check.kept == "ensemble"
    assert chosen.check.held_out_ensemble == pytest.approx(1.0)
    assert "validation_of_the_refused_ensemble" not in chosen.check.as_json()
    assert chosen.validation.score == pytest.approx(1.0)
    assert {m.name: w for m, w in chosen.used()}["better"] > 0.5


def test_the_ensemble_check_needs_its_fallback_among_the_candidates():
    from tasks.train.tune import Member, checked_ensemble

    truth = np.tile(np.array([1] * 4 + [0] * 6), 3)
    problem = _three_folds(TaskType.matching, truth, "fixed")
    with pytest.raises(ValueError, match="fallback 'catboost-defaults'"):
        checked_ensemble(problem, "f1", [Member("x", "features", _false_alarms({}))], 3, "catboost-defaults")


def test_when_selection_picks_the_fallback_alone_there_is_nothing_to_compare():
    from tasks.train.tune import DEFAULTS_MEMBER, Member, checked_ensemble

    truth = np.tile(np.array([1] * 4 + [0] * 6), 3)
    problem = _three_folds(TaskType.matching, truth, "fixed")
    defaults = Member(DEFAULTS_MEMBER, "features", _false_alarms({}))  # perfect: nothing can improve on it
    worse = Member("worse", "features", _false_alarms({0: [4], 1: [4], 2: [4]}))
    chosen = checked_ensemble(problem, "f1", [defaults, worse], rounds=3, fallback=DEFAULTS_MEMBER)
    assert [m.name for m, _ in chosen.used()] == [DEFAULTS_MEMBER]
    assert chosen.check is not None and chosen.check.held_out_ensemble is None
    assert chosen.check.as_json() == {"kept": DEFAULTS_MEMBER, "reason": "selection picked the fallback alone"}


def test_a_portfolio_outside_the_search_space_is_refused(quick):
    from pydantic import ValidationError

    from tasks.core.params import TrainParams

    data = quick.model_dump()
    data["portfolio"] = [{"depth": 12}]
    with pytest.raises(ValidationError, match="portfolio"):
        TrainParams.model_validate(data)
    data["portfolio"] = [{"border_count": 64}]
    with pytest.raises(ValidationError, match="not a dimension"):
        TrainParams.model_validate(data)


def test_the_time_budget_stops_a_trial_inside_catboost(tmp_path, quick):
    classification_release(tmp_path)
    slow = quick.model_copy(update={"max_iterations": 5000, "early_stopping_rounds": 5000, "n_trials": 5})
    from tasks.train.tune import fit_and_validate, with_tuned_decision

    _, problem = prepare("toy_items", tmp_path / "public", tmp_path / "embeddings", slow)
    defaults = fit_and_validate(problem, slow, {}, 30, "macro_f1", early_stopping=False, keep_models=True)
    result = tune(problem, slow, "macro_f1", defaults=with_tuned_decision(problem, "macro_f1", defaults), timeout_s=1.5)
    assert result.stopped_by == "time budget" and result.seconds < 60
    assert "time budget" in set(result.trials["stopped"].dropna())
    assert result.trials.loc[0, "origin"] == "catboost defaults" and result.trials.loc[0, "state"] == "COMPLETE"
    assert result.candidates[0].name == "catboost-defaults"  # its fold models are the default baseline's, kept
