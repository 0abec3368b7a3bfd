"""The train stage of one task: outputs, baseline submissions, reproducibility, no hidden labels."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tasks.cli import main
from tasks.core.files import sha256_file
from tasks.core.schema import SubmissionRecord
from tasks.train.stage import BASELINES, train_task
from tests.synthetic import classification_release, matching_release

OPENS = "2026-11-01T00:00:00Z"


def run(tmp_path, task, params, out="out"):
    o = tmp_path / out
    return train_task(
        task,
        tmp_path / "public",
        tmp_path / "embeddings",
        o / "models",
        o / "metrics",
        o / "submissions",
        params,
        OPENS,
    ), o


@pytest.mark.parametrize(
    "make,task,key,columns",
    [
        (classification_release, "toy_items", "id", ["id", "label"]),
        (matching_release, "toy_pairs", "pair_id", ["pair_id", "label", "score"]),
    ],
)
def test_outputs_and_baseline_submissions(tmp_path, quick, make, task, key, columns):
    make(tmp_path)
    report, out = run(tmp_path, task, quick)
    models = out / "models" / task
    recipe = json.loads((models / "ensemble.json").read_text())
    assert recipe["members"] and all((models / f).is_file() for m in recipe["members"] for f in m.get("files", []))
    assert sum(m["weight"] for m in recipe["members"]) == pytest.approx(1.0, abs=1e-5)
    best = json.loads((models / "best_params.json").read_text())
    assert best["tuned"] and best["catboost"]["random_seed"] == quick.seed
    trials = pq.read_table(models / "trials.parquet").to_pandas()
    assert len(trials) == quick.n_trials and {"number", "state", "value", "duration_s", "params_depth"} <= set(
        trials.columns
    )
    # CatBoost's defaults first (the default baseline's own fit), then the portfolio, then TPE
    assert list(trials["origin"][:2]) == ["catboost defaults", "portfolio 1/1"]
    features = json.loads((models / "features.json").read_text())["features"]
    assert all({"name", "kind", "uses", "importance"} <= set(f) for f in features)
    metrics = json.loads((out / "metrics" / f"{task}.json").read_text())
    assert set(metrics["baselines"]) == {b.name for b in BASELINES}
    assert metrics["tuning"]["complete"] + metrics["tuning"]["pruned"] == quick.n_trials
    n_test = len(pq.read_table(tmp_path / "public" / task / ("test.parquet" if key == "id" else "test_pairs.parquet")))
    for b in BASELINES:
        folder = out / "submissions" / b.team / task
        record = SubmissionRecord.model_validate_json((folder / "submission.json").read_text())
        assert record.team == b.team and record.submission_id == task and record.tasks == [task]
        assert record.baseline and record.submitted_at == OPENS
        assert record.files == {f"{task}.csv": sha256_file(folder / f"{task}.csv")}
        twin = f"{task}.canonical.parquet"  # stored through submit(), like every team's
        assert record.canonical == {twin: sha256_file(folder / twin)}
        sub = pd.read_csv(folder / f"{task}.csv", dtype={key: str})
        assert list(sub.columns) == columns and len(sub) == n_test
        assert sub[key].is_monotonic_increasing and sub[key].is_unique
        if key == "pair_id":
            assert set(sub["label"]) <= {0, 1} and sub["score"].between(0, 1).all()
    floor = pd.read_csv(out / "submissions" / "baseline-majority" / task / f"{task}.csv")
    assert floor["label"].nunique() == 1
    if key == "pair_id":
        assert (floor["label"] == 0).all()
    primary = metrics["primary_metric"]
    assert metrics["baselines"]["catboost-tuned"][primary] > metrics["baselines"]["majority"][primary]
    # by construction: the defaults are an ensemble candidate, the selection starts from the best single member
    assert metrics["baselines"]["catboost-tuned"][primary] >= metrics["baselines"]["catboost-default"][primary]
    assert metrics["baselines"]["catboost-tuned"][primary] >= metrics["ensemble"]["best_single"]


def test_same_seed_same_inputs_byte_identical_predictions(tmp_path, quick):
    classification_release(tmp_path)
    matching_release(tmp_path)
    for task in ("toy_items", "toy_pairs"):
        _, a = run(tmp_path, task, quick, "a")
        _, b = run(tmp_path, task, quick, "b")
        for baseline in BASELINES:
            rel = f"{baseline.team}/{task}"
            for name in (f"{task}.csv", "submission.json"):
                assert (a / "submissions" / rel / name).read_bytes() == (b / "submissions" / rel / name).read_bytes(), (
                    rel,
                    name,
                )
        for f in sorted((a / "models" / task).glob("*.cbm")) + [a / "models" / task / "ensemble.json"]:
            assert f.read_bytes() == (b / "models" / task / f.name).read_bytes(), f.name


def test_a_task_without_images_reuses_the_tuned_model_for_no_images(tmp_path, quick):
    public, emb = classification_release(tmp_path)
    card = json.loads((public / "card.json").read_text())
    del card["features"]["photo"]
    (public / "card.json").write_text(json.dumps(card))
    (emb / "photo.parquet").unlink()
    _, out = run(tmp_path, "toy_items", quick)
    tuned = (out / "submissions" / "baseline-catboost-tuned" / "toy_items" / "toy_items.csv").read_bytes()
    assert (out / "submissions" / "baseline-no-images" / "toy_items" / "toy_items.csv").read_bytes() == tuned
    record = json.loads((out / "submissions" / "baseline-no-images" / "toy_items" / "submission.json").read_text())
    assert "no feature to leave out" in record["description"]


@pytest.mark.parametrize("check", [True, False])
def test_the_ablations_follow_the_recipe_the_tuned_baseline_kept(tmp_path, quick, monkeypatch, check):
    """Where the tuned baseline is the defaults alone, an ablation refits the defaults on fewer
    features, not the tuned configuration its check refused; else the best configuration."""
    import tasks.train.stage as stage

    matching_release(tmp_path)
    fits = []

    def spy(problem, params, tuned, iterations, *args, **kwargs):
        fits.append((len(problem.features.features), dict(tuned), iterations))
        return real(problem, params, tuned, iterations, *args, **kwargs)

    real = stage.fit_and_validate
    monkeypatch.setattr(stage, "fit_and_validate", spy)
    params = quick.model_copy(update={"ensemble_check": check})
    _, out = run(tmp_path, "toy_pairs", params)
    recipe = json.loads((out / "models" / "toy_pairs" / "ensemble.json").read_text())
    best = json.loads((out / "models" / "toy_pairs" / "best_params.json").read_text())["tuned"]
    all_features, ablations = fits[0][0], fits[1:]
    assert ablations and all(n < all_features for n, _, _ in ablations)  # the image and the non-text ablations
    if [m["name"] for m in recipe["members"]] == ["catboost-defaults"]:
        assert all(tuned == {} and rounds == params.default_iterations for _, tuned, rounds in ablations)
    else:
        assert all(tuned == best and rounds == params.max_iterations for _, tuned, rounds in ablations)
    # on this toy task the check refuses the ensemble, and selection without it keeps a tuned trial: both paths run
    assert (recipe["members"][0]["name"] == "catboost-defaults") == check


def test_training_never_opens_hidden_labels(tmp_path, quick):
    """An audit hook sees every file the stage opens; nothing under data/private may be among them."""
    classification_release(tmp_path)
    private = tmp_path / "private" / "toy_items"
    private.mkdir(parents=True)
    pq.write_table(
        pq.read_table(tmp_path / "public" / "toy_items" / "test.parquet").select(["id"]),
        private / "test_labels.parquet",
    )
    opened = []
    watching = [True]

    def hook(event, args):
        if watching[0] and event == "open" and args and isinstance(args[0], (str, bytes)):
            opened.append(str(args[0]))

    sys.addaudithook(hook)
    try:
        run(tmp_path, "toy_items", quick)
    finally:
        watching[0] = False
    assert any("public" in p for p in opened)  # the hook does see the stage's reads
    assert not [p for p in opened if str(tmp_path / "private") in p]


def test_cli_train_reads_params_once_and_reports(tmp_path, quick, project_params, capsys):
    classification_release(tmp_path)
    import yaml

    from tests.conftest import ROOT

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update(
        {
            k: v
            for k, v in quick.model_dump().items()
            if k
            in (
                "n_trials",
                "budget",
                "portfolio",
                "ensemble_size",
                "max_iterations",
                "early_stopping_rounds",
                "default_iterations",
                "tpe_startup_trials",
                "image_pca_dims",
                "text_pca_dims",
            )
        }
    )
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "cli"
    code = main(
        [
            "--params",
            str(tmp_path / "params.yaml"),
            "train",
            "toy_items",
            "--public",
            str(tmp_path / "public"),
            "--embeddings",
            str(tmp_path / "embeddings"),
            "--models",
            str(out / "models"),
            "--metrics",
            str(out / "metrics"),
            "--submissions",
            str(out / "submissions"),
        ]
    )
    assert code == 0
    assert "toy_items: validation macro_f1 tuned" in capsys.readouterr().out
    assert (out / "submissions" / "baseline-catboost-tuned" / "toy_items" / "submission.json").is_file()


def test_cli_train_without_embeddings_says_how_to_fix(tmp_path, capsys):
    classification_release(tmp_path)
    code = main(["train", "toy_items", "--public", str(tmp_path / "public"), "--embeddings", str(tmp_path / "nowhere")])
    assert code == 2
    err = capsys.readouterr().err
    assert "toy_items" in err and "embed" in err and "Fix:" in err


@pytest.mark.parametrize("make,task", [(classification_release, "toy_items"), (matching_release, "toy_pairs")])
def test_the_saved_model_reproduces_the_tuned_submission(tmp_path, quick, make, task):
    import numpy as np

    from tasks.train.features import load_release, test_keys
    from tasks.train.stage import SCORE_DECIMALS, prepare
    from tasks.train.tune import class_priors, decide_classes, predict_saved

    make(tmp_path)
    _, out = run(tmp_path, task, quick)
    _, problem = prepare(task, tmp_path / "public", tmp_path / "embeddings", quick)
    score, classes, decision = predict_saved(out / "models" / task, problem, problem.features.test)
    sub = pd.read_csv(out / "submissions" / "baseline-catboost-tuned" / task / f"{task}.csv", dtype=str)
    key = sub.columns[0]
    keys = test_keys(load_release(tmp_path / "public" / task)).to_numpy()  # feature rows are in release order
    by_key = sub.set_index(key)
    if key == "id":
        assert list(decide_classes(score, classes, class_priors(problem, classes), decision)) == list(
            by_key.loc[keys, "label"]
        )
    else:
        assert np.allclose(np.round(score, SCORE_DECIMALS), by_key.loc[keys, "score"].astype(float).to_numpy())
