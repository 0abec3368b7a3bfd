"""Baseline quality on the hidden test labels, next to an independent strong reference.

    .venv/bin/python benchmarks/baseline_quality.py [--tasks car_class ...] [--params params.yaml]
                                                   [--embeddings data/embeddings] [--out DIR]

For every demo task (after `dvc repro` has built the release and the embeddings), in one run:
  * runs the train stage (tasks.train.stage.train_task) into a scratch folder: tuned CatBoost,
    default CatBoost, the floor and the modality ablations, timing the tuning;
  * fits a reference that shares no code with CatBoost's path: scikit-learn's
    HistGradientBoosting on the same tabular/pair features, plus for classification the
    out-of-fold class probabilities of a TF-IDF (words + character n-grams) logistic
    regression on the text columns; matching thresholds tuned on out-of-fold predictions;
  * scores everything on data/private/<task>/test_labels.parquet (public and private part
    together). This script is the only reader of data/private/ besides the scorer.
Prints one table (primary metric per task and baseline, mean over --seeds runs, and their
spread) and the comparisons the targets name: tuned vs default, tuned vs floor, tuned vs
no-images on the tasks with images.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.core.params import load_params  # noqa: E402
from tasks.core.schema import ID, LABEL, PAIR_ID, Role, TaskType, hidden_labels_path  # noqa: E402
from tasks.train.features import build_features, labels, load_embeddings, load_release, pair_groups, test_keys  # noqa: E402
from tasks.train.stage import BASELINES, train_task  # noqa: E402
from tasks.train.tune import accuracy, best_threshold, binary_scores, macro_f1  # noqa: E402

DEMO_TASKS = ["car_class", "fastfood_chain", "product_type", "person_link", "product_dedup", "product_variants"]


def score(task_type: TaskType, metric: str, truth: pd.DataFrame, submission: pd.DataFrame) -> float:
    key = ID if task_type is TaskType.classification else PAIR_ID
    merged = truth[[key, LABEL]].merge(submission[[key, LABEL]], on=key, how="left", suffixes=("_true", "_pred"))
    if task_type is TaskType.classification:
        t, p = (
            merged[f"{LABEL}_true"].astype(str).to_numpy(),
            merged[f"{LABEL}_pred"].fillna("<none>").astype(str).to_numpy(),
        )
        return {"macro_f1": macro_f1(t, p), "accuracy": accuracy(t, p)}[metric]
    t, p = merged[f"{LABEL}_true"].astype(int).to_numpy(), merged[f"{LABEL}_pred"].fillna(0).astype(int).to_numpy()
    return binary_scores(t, p)[metric]


def reference(task: str, public: Path, embeddings: Path, params, seed: int) -> tuple[pd.DataFrame, float]:
    """HistGradientBoosting (+ TF-IDF logistic regression for text) on the same inputs."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline, make_union

    start = time.perf_counter()
    release = load_release(public / task)
    emb = load_embeddings(embeddings / task, release)
    # the same features, with text as TF-IDF instead of bag-of-words columns or CatBoost text
    fs = build_features(release, emb, params.model_copy(update={"text_features": "none", "text_model": False}))
    y = labels(release)
    cats = fs.cat_features
    # HGB's binning fails on a column without two distinct values in a fold
    informative = [c for c in fs.train.columns if fs.train[c].nunique(dropna=True) > 1]
    Xtr, Xte = fs.train[informative].copy(), fs.test[informative].copy()
    cats = [c for c in cats if c in informative]
    for c in cats:  # HGB takes categories as small integer codes
        codes = pd.Categorical(pd.concat([Xtr[c], Xte[c]]).astype(str))
        Xtr[c] = codes.codes[: len(Xtr)]
        Xte[c] = codes.codes[len(Xtr) :]
    cat_mask = [c in cats for c in Xtr.columns]

    def hgb() -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(
            max_iter=200,
            learning_rate=0.05,
            max_leaf_nodes=15,
            l2_regularization=1.0,
            early_stopping=False,
            categorical_features=cat_mask if any(cat_mask) else None,
            random_state=seed,
        )

    keys = test_keys(release)
    if release.type is TaskType.classification:
        text_cols = release.columns(Role.text)
        if text_cols:
            join = lambda df: df[text_cols].astype("string").fillna("").agg(" ".join, axis=1).tolist()  # noqa: E731
            tr_text, te_text = join(release.tables["train"]), join(release.tables["test"])
            tfidf = make_union(
                TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True),
                TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True),
            )
            text_model = make_pipeline(tfidf, LogisticRegression(max_iter=2000, C=5.0))
            # a class rarer than the folds is missing from some fits; sklearn fills its column with zeros there
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                oof = cross_val_predict(
                    text_model,
                    tr_text,
                    y,
                    cv=StratifiedKFold(5, shuffle=True, random_state=seed),
                    method="predict_proba",
                )
            text_model.fit(tr_text, y)
            classes = text_model.classes_
            Xtr = pd.concat([Xtr, pd.DataFrame(oof, columns=[f"tfidf_p_{c}" for c in classes])], axis=1)
            Xte = pd.concat(
                [Xte, pd.DataFrame(text_model.predict_proba(te_text), columns=[f"tfidf_p_{c}" for c in classes])],
                axis=1,
            )
            cat_mask += [False] * len(classes)
        model = hgb().fit(Xtr, y)
        pred = model.predict(Xte)
        sub = pd.DataFrame({ID: keys.to_numpy(), LABEL: pred.astype(str)})
    else:
        groups = pair_groups(release)
        oof = cross_val_predict(hgb(), Xtr, y, cv=GroupKFold(5), groups=groups, method="predict_proba")[:, 1]
        threshold, _ = best_threshold(y, oof)
        model = hgb().fit(Xtr, y)
        proba = model.predict_proba(Xte)[:, 1]
        sub = pd.DataFrame({PAIR_ID: keys.to_numpy(), LABEL: (proba >= threshold).astype(int)})
    return sub, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="*", default=DEMO_TASKS)
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--public", type=Path, default=ROOT / "data" / "public")
    ap.add_argument("--private", type=Path, default=ROOT / "data" / "private")
    ap.add_argument("--embeddings", type=Path, default=ROOT / "data" / "embeddings")
    ap.add_argument("--out", type=Path, help="keep the stage outputs here (default: a temporary folder)")
    ap.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="repeat with train.seed, seed + 1, ... and average (test sets are small: one seed is noisy)",
    )
    args = ap.parse_args()
    all_params = load_params(args.params)
    params = all_params.train
    out = args.out or Path(tempfile.mkdtemp(prefix="mmtc-baseline-quality-"))
    seeds = [params.seed + k for k in range(args.seeds)]
    names = [b.name for b in BASELINES]
    rows = []
    for task in args.tasks:
        release = load_release(args.public / task)
        truth = pq.read_table(hidden_labels_path(args.private, task)).to_pandas()
        metric = release.primary_metric
        for seed in seeds:
            seeded = params.model_copy(update={"seed": seed})
            folder = out / f"seed{seed}"
            start = time.perf_counter()
            report = train_task(
                task,
                args.public,
                args.embeddings,
                folder / "models",
                folder / "metrics",
                folder / "submissions",
                seeded,
                all_params.challenge.opens_at,
            )
            stage_s = time.perf_counter() - start
            row = {"task": task, "metric": metric, "seed": seed}
            for b in BASELINES:
                sub = pd.read_csv(
                    folder / "submissions" / b.team / task / f"{task}.csv",
                    dtype={ID: str, PAIR_ID: str, LABEL: str if release.type is TaskType.classification else int},
                )
                row[b.name] = score(release.type, metric, truth, sub)
            ref_sub, ref_s = reference(task, args.public, args.embeddings, seeded, seed)
            row["reference"] = score(release.type, metric, truth, ref_sub)
            row["trials"] = report.metrics["tuning"]["complete"] + report.metrics["tuning"]["pruned"]
            row["tuning_s"] = report.metrics["seconds"]["tuning"]
            row["stage_s"] = stage_s
            row["reference_s"] = ref_s
            rows.append(row)
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    runs = pd.DataFrame(rows)
    table = runs.drop(columns="seed").groupby(["task", "metric"], sort=False).mean().reset_index()
    cols = ["task", "metric", *names, "reference", "trials", "tuning_s", "stage_s", "reference_s"]
    print()
    print(
        f"primary metric on the hidden test labels (public + private), mean over seeds {seeds}; stage outputs in {out}"
    )
    print(
        table[cols].to_markdown(index=False, floatfmt=".3f")
        if _has_tabulate()
        else table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}")
    )
    if len(seeds) > 1:
        spread = runs.groupby("task", sort=False)[[*names, "reference"]].std().reset_index()
        print("\nstandard deviation over seeds (the noise a single comparison carries):")
        print(spread.to_markdown(index=False, floatfmt=".3f") if _has_tabulate() else spread.to_string(index=False))
    print()
    tuned, default, floor = table["catboost-tuned"], table["catboost-default"], table["majority"]
    print(
        f"tuned > default on {int((tuned > default).sum())}/{len(table)} tasks; mean ratio tuned/default {np.mean(tuned / default.replace(0, np.nan)):.3f}"
    )
    print(f"tuned > floor on {int((tuned > floor).sum())}/{len(table)} tasks")
    print(f"tuned / reference, mean over tasks: {np.mean(tuned / table['reference'].replace(0, np.nan)):.3f}")
    for _, r in table.iterrows():
        if Role.image in load_release(args.public / r["task"]).features.values():
            print(
                f"{r['task']}: images add {r['catboost-tuned'] - r['no-images']:+.3f} {r['metric']} (tuned {r['catboost-tuned']:.3f} vs no-images {r['no-images']:.3f})"
            )
    per_seed = runs.groupby("seed")[["stage_s", "tuning_s"]].sum()
    print(
        f"train stage, all tasks, per seed: {per_seed['stage_s'].mean():.1f}s (tuning {per_seed['tuning_s'].mean():.1f}s)"
    )


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401

        return True
    except ImportError:
        return False


if __name__ == "__main__":
    main()
