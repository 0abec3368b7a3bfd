"""Baseline quality on the hidden test labels, next to an independent strong reference.

    .venv/bin/python benchmarks/baseline_quality.py [--tasks car_class ...] [--seeds 3]
                                                   [--reference hgb|autogluon] [--times 1 4]
                                                   [--params params.yaml] [--out DIR]

For every demo task (after `dvc repro` has built the release and the embeddings), in one run:
  * runs the train stage (tasks.train.stage.train_task) into a scratch folder, with the task's
    tuning budget (its share of train.budget, as the train_budget stage computes it): tuned
    and ensembled CatBoost, default CatBoost, the floor and the modality ablations;
  * fits a reference on the same release:
      - `hgb` (default): scikit-learn's HistGradientBoosting on the same tabular/pair features,
        plus for classification a TF-IDF logistic regression's out-of-fold probabilities;
      - `autogluon`: AutoGluon's TabularPredictor, preset best_quality, on the feature table the
        pipeline builds (classification: the feature columns; matching: the pair features),
        given the wall time of our whole train stage on that task times each of --times (1
        and 4: equal time, and four times it); for matching also once on the raw joined
        records (left_* and right_* columns of each pair, AutoGluon's own text handling) at
        equal time. AutoGluon 1.6.3 pins pyarrow < 25 and this project pins 26 (constraints.txt),
        so it cannot be an extra of this package: it lives in its own environment, made once by
        `make autogluon-env` (python3.11 -m venv benchmarks/.venv-autogluon, then pip install
        "autogluon.tabular[catboost,lightgbm,xgboost,fastai]==1.6.3"), where
        benchmarks/autogluon_fit.py runs on the tables this script writes;
  * scores everything on data/private/<task>/test_labels.parquet (public and private part
    together), with 95% paired bootstrap intervals over test items (matching: pairs grouped by
    their left record), the metric averaged over seeds inside each resample. This script is the
    only reader of data/private/ besides the scorer.
Prints, per task, every system's primary metric with its interval and seconds, each one's
difference to the tuned baseline with its interval, and the verdicts the targets name: tuned
above defaults beyond the seed spread, tuned not significantly below AutoGluon at equal time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.core.metrics import score as registry_score  # noqa: E402
from tasks.core.params import load_params  # noqa: E402
from tasks.core.schema import ID, LABEL, LEFT_ID, PAIR_ID, RIGHT_ID, Role, TaskType, hidden_labels_path  # noqa: E402
from tasks.train.budget import split_budget, task_size  # noqa: E402
from tasks.train.features import build_features, labels, load_embeddings, load_release, pair_groups, test_keys  # noqa: E402
from tasks.train.stage import BASELINES, train_task  # noqa: E402
from tasks.train.tune import best_threshold  # noqa: E402

DEMO_TASKS = ["car_class", "fastfood_chain", "product_type", "person_link", "product_dedup", "product_variants"]
AUTOGLUON_PYTHON = ROOT / "benchmarks" / ".venv-autogluon" / "bin" / "python"
AUTOGLUON_METRIC = {
    "macro_f1": "f1_macro",
    "accuracy": "accuracy",
    "f1": "f1",
    "precision": "precision",
    "recall": "recall",
}


def aligned(task_type: TaskType, truth: pd.DataFrame, submission: pd.DataFrame) -> np.ndarray:
    """The submission's labels in the order of the hidden labels (a missing row: a wrong answer)."""
    key = ID if task_type is TaskType.classification else PAIR_ID
    merged = truth[[key]].merge(submission[[key, LABEL]], on=key, how="left")
    if task_type is TaskType.classification:
        return merged[LABEL].fillna("<none>").astype(str).to_numpy()
    return merged[LABEL].fillna(0).astype(int).to_numpy()


def metric_of(task_type: TaskType, metric: str, truth: np.ndarray, pred: np.ndarray) -> float:
    """The primary metric, by the registry's definition (tasks/core/metrics.py), as tuning scores it."""
    return registry_score(metric, truth, pred)


def truth_of(task_type: TaskType, truth: pd.DataFrame) -> np.ndarray:
    return (
        truth[LABEL].astype(str).to_numpy()
        if task_type is TaskType.classification
        else truth[LABEL].astype(int).to_numpy()
    )


def score(task_type: TaskType, metric: str, truth: pd.DataFrame, submission: pd.DataFrame) -> float:
    return metric_of(task_type, metric, truth_of(task_type, truth), aligned(task_type, truth, submission))


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


# ---------------------------------------------------------------------------------------
# AutoGluon


def _safe_columns(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_axis([f"f{j:04d}" for j in range(frame.shape[1])], axis=1)


def autogluon_tables(release, features, kind: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """kind `features`: the pipeline's feature table; `raw`: each pair's two records side by side."""
    y = labels(release)
    if kind == "features":
        train, test = _safe_columns(features.train.copy()), _safe_columns(features.test.copy())
    else:
        keep = [c for c, r in release.features.items() if r is not Role.image]
        left = release.tables["left"].set_index(ID)[keep].add_prefix("left_")
        right = release.tables["right"].set_index(ID)[keep].add_prefix("right_")

        def joined(pairs: pd.DataFrame) -> pd.DataFrame:
            out = pd.concat(
                [
                    left.reindex(pairs[LEFT_ID].astype(str)).reset_index(drop=True),
                    right.reindex(pairs[RIGHT_ID].astype(str)).reset_index(drop=True),
                ],
                axis=1,
            )
            return out

        left.index, right.index = left.index.astype(str), right.index.astype(str)
        train, test = joined(release.tables["train_pairs"]), joined(release.tables["test_pairs"])
    train[LABEL] = y
    return train, test


class AutoGluonFailed(RuntimeError):
    """An AutoGluon fit that exited with an error: its last error line is the reason reported."""

    def __init__(self, task: str, stdout: str, stderr: str) -> None:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        self.reason = lines[-1] if lines else "no error message"
        super().__init__(f"AutoGluon failed on {task}:\n{stdout[-2000:]}\n{stderr[-4000:]}")


def run_autogluon(
    python: Path, release, train: pd.DataFrame, test: pd.DataFrame, time_limit: float, seed: int, work: Path
) -> tuple[pd.DataFrame, float, dict]:
    """One AutoGluon fit in its own environment; the submission frame, wall seconds and its report."""
    work.mkdir(parents=True, exist_ok=True)
    train.to_parquet(work / "train.parquet", index=False)
    test.to_parquet(work / "test.parquet", index=False)
    classification = release.type is TaskType.classification
    cmd = [
        str(python),
        str(ROOT / "benchmarks" / "autogluon_fit.py"),
        "--train",
        str(work / "train.parquet"),
        "--test",
        str(work / "test.parquet"),
        "--label",
        LABEL,
        "--problem",
        "multiclass" if classification else "binary",
        "--metric",
        AUTOGLUON_METRIC[release.primary_metric],
        "--time-limit",
        f"{time_limit:.1f}",
        "--seed",
        str(seed),
        "--out",
        str(work / "predictions.parquet"),
    ]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise AutoGluonFailed(release.task, done.stdout, done.stderr)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    pred = pd.read_parquet(work / "predictions.parquet").sort_values("row")
    keys = test_keys(release).to_numpy()
    if classification:
        sub = pd.DataFrame({ID: keys, LABEL: pred[LABEL].astype(str).to_numpy()})
    else:
        sub = pd.DataFrame({PAIR_ID: keys, LABEL: pred[LABEL].astype(int).to_numpy()})
    return sub, seconds, report


# ---------------------------------------------------------------------------------------
# paired bootstrap


def resample_groups(task_type: TaskType, truth: pd.DataFrame, public: Path, task: str) -> np.ndarray:
    """The unit a resample draws: a test row (classification) or all test pairs of one left record."""
    if task_type is TaskType.classification:
        return np.arange(len(truth))
    pairs = pq.read_table(public / task / "test_pairs.parquet").to_pandas()
    left = truth[[PAIR_ID]].merge(pairs[[PAIR_ID, LEFT_ID]], on=PAIR_ID, how="left")[LEFT_ID].astype(str)
    return pd.factorize(left)[0]


def bootstrap(
    task_type: TaskType,
    metric: str,
    truth: np.ndarray,
    predictions: dict[str, list[np.ndarray]],
    groups: np.ndarray,
    reference: str,
    n: int,
    seed: int = 0,
) -> dict[str, dict]:
    """Per system: the seed-mean metric, its 95% interval, and the paired interval of (system - reference)."""
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(groups == g) for g in range(groups.max() + 1)]
    draws = {name: [] for name in predictions}
    for _ in range(n):
        rows = np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
        for name, preds in predictions.items():
            draws[name].append(np.mean([metric_of(task_type, metric, truth[rows], p[rows]) for p in preds]))
    out = {}
    ref = np.asarray(draws[reference])
    for name, preds in predictions.items():
        values = np.asarray(draws[name])
        diff = values - ref
        out[name] = {
            "score": float(np.mean([metric_of(task_type, metric, truth, p) for p in preds])),
            "low": float(np.percentile(values, 2.5)),
            "high": float(np.percentile(values, 97.5)),
            "diff_low": float(np.percentile(diff, 2.5)),
            "diff_high": float(np.percentile(diff, 97.5)),
            "seed_sd": float(np.std([metric_of(task_type, metric, truth, p) for p in preds], ddof=1))
            if len(preds) > 1
            else 0.0,
        }
    return out


@dataclass
class TaskRun:
    task: str
    type: TaskType
    metric: str
    truth: np.ndarray
    groups: np.ndarray
    predictions: dict[str, list[np.ndarray]] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)  # a reference that failed: seed and reason

    def add(self, name: str, pred: np.ndarray, seconds: float) -> None:
        self.predictions.setdefault(name, []).append(pred)
        self.seconds.setdefault(name, []).append(seconds)

    def fail(self, name: str, seed: int, reason: str) -> None:
        self.failures.setdefault(name, []).append(f"seed {seed}: {reason}")


def report_task(run: TaskRun, resamples: int, seeds: list[int]) -> list[str]:
    """Print one task's table (every system, its interval, its difference to tuned, its time); return the verdicts."""
    stats = bootstrap(run.type, run.metric, run.truth, run.predictions, run.groups, "catboost-tuned", resamples)
    rows = []
    for name in run.predictions:
        st = stats[name]
        rows.append(
            {
                "system": name,
                run.metric: f"{st['score']:.3f}",
                "95% CI": f"[{st['low']:.3f}, {st['high']:.3f}]",
                "seed sd": f"{st['seed_sd']:.3f}",
                "minus tuned (95% CI)": ""
                if name == "catboost-tuned"
                else f"{st['score'] - stats['catboost-tuned']['score']:+.3f} [{st['diff_low']:+.3f}, {st['diff_high']:+.3f}]",
                "seconds": f"{np.mean(run.seconds[name]):.0f}",
                "seeds": f"{len(run.predictions[name])}/{len(seeds)}",
            }
        )
    table = pd.DataFrame(rows)
    print(
        f"\n{run.task} ({run.metric} on the hidden test labels, public + private, {len(run.truth)} test items; "
        f"mean over seeds {seeds}; 95% paired bootstrap intervals, {resamples} resamples)"
    )
    print(table.to_markdown(index=False) if _has_tabulate() else table.to_string(index=False), flush=True)
    for name, reasons in run.failures.items():
        print(f"FAILED {name} ({len(reasons)} of {len(seeds)} seeds; its row, if any, is the mean of the others):")
        for reason in reasons:
            print(f"  {reason}")
    verdicts = []
    tuned, default = stats["catboost-tuned"], stats["catboost-default"]
    gap = tuned["score"] - default["score"]
    spread = max(tuned["seed_sd"], default["seed_sd"])
    significant = default["diff_high"] < 0  # defaults minus tuned below 0 on the whole interval
    verdicts.append(
        f"{run.task}: tuned - defaults {gap:+.3f} (paired 95% CI [{-default['diff_high']:+.3f}, {-default['diff_low']:+.3f}]"
        f"{', significant' if significant else ''}; seed spread {spread:.3f}): "
        + (
            "NOT above"
            if gap <= 0
            else "above (one seed: --seeds 3 gives the spread)"
            if len(seeds) == 1
            else "above, beyond the seed spread"
            if gap > spread
            else "above, within the seed spread"
        )
    )
    for name in run.failures:
        if name.startswith("autogluon-features@"):
            verdicts.append(f"{run.task}: {name} FAILED on {len(run.failures[name])} of {len(seeds)} seeds")
    for name in run.predictions:
        if name.startswith("autogluon-features@"):
            st = stats[name]
            below = st["diff_low"] > 0  # the reference minus tuned is above 0 on the whole interval
            verdicts.append(
                f"{run.task}: tuned - {name} {-(st['score'] - tuned['score']):+.3f} "
                f"(paired 95% CI [{-st['diff_high']:+.3f}, {-st['diff_low']:+.3f}]): "
                + ("SIGNIFICANTLY BELOW" if below else "not significantly below")
            )
    return verdicts


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
    ap.add_argument("--reference", choices=["hgb", "autogluon"], default="hgb")
    ap.add_argument("--times", type=float, nargs="*", default=[1.0, 4.0], help="AutoGluon's time as multiples of ours")
    ap.add_argument("--autogluon-python", type=Path, default=AUTOGLUON_PYTHON)
    ap.add_argument("--bootstrap", type=int, default=1000, help="resamples of the paired bootstrap")
    args = ap.parse_args()
    if args.reference == "autogluon" and not args.autogluon_python.is_file():
        sys.exit(f"no AutoGluon environment at {args.autogluon_python}: make it as the docstring of this script says")
    all_params = load_params(args.params)
    params = all_params.train
    out = args.out or Path(tempfile.mkdtemp(prefix="mmtc-baseline-quality-"))
    seeds = [params.seed + k for k in range(args.seeds)]
    challenge = [t for t in all_params.challenge.tasks if (args.public / t / "card.json").is_file()]
    budgets = split_budget([task_size(args.public / t) for t in challenge], params.budget)
    runs: list[TaskRun] = []
    verdicts: list[str] = []
    print(f"stage outputs in {out}", flush=True)
    for task in args.tasks:
        release = load_release(args.public / task)
        truth_frame = pq.read_table(hidden_labels_path(args.private, task)).to_pandas()
        run = TaskRun(
            task,
            release.type,
            release.primary_metric,
            truth_of(release.type, truth_frame),
            resample_groups(release.type, truth_frame, args.public, task),
        )
        runs.append(run)
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
                budget_s=budgets.get(task),
            )
            stage_s = time.perf_counter() - start
            for b in BASELINES:
                sub = pd.read_csv(
                    folder / "submissions" / b.team / task / f"{task}.csv",
                    dtype={ID: str, PAIR_ID: str, LABEL: str if release.type is TaskType.classification else int},
                )
                run.add(b.name, aligned(release.type, truth_frame, sub), stage_s)
            line = {"task": task, "seed": seed, "stage_s": round(stage_s, 1), "budget_s": budgets.get(task)}
            line["ensemble"] = report.metrics["ensemble"]["members"]
            if args.reference == "hgb":
                ref_sub, ref_s = reference(task, args.public, args.embeddings, seeded, seed)
                run.add("hgb-reference", aligned(release.type, truth_frame, ref_sub), ref_s)
            else:
                release_obj = load_release(args.public / task)
                features = build_features(release_obj, load_embeddings(args.embeddings / task, release_obj), seeded)
                kinds = [("features", m) for m in args.times]
                if release.type is TaskType.matching:
                    kinds.append(("raw", 1.0))
                for kind, multiple in kinds:
                    train, test = autogluon_tables(release_obj, features, kind)
                    name = f"autogluon-{'raw-records' if kind == 'raw' else 'features'}@{multiple:g}x"
                    try:
                        sub, seconds, ag = run_autogluon(
                            args.autogluon_python,
                            release_obj,
                            train,
                            test,
                            stage_s * multiple,
                            seed,
                            folder / "autogluon" / task / name,
                        )
                    except AutoGluonFailed as failed:  # one failed fit is a result to report, not the end of the run
                        print(str(failed), file=sys.stderr, flush=True)
                        run.fail(name, seed, failed.reason)
                        line[name] = {"failed": failed.reason}
                        continue
                    # its time: fit and predict, as our stage's time is (the process start and imports apart)
                    run.add(name, aligned(release.type, truth_frame, sub), ag["fit_s"] + ag["predict_s"])
                    line[name] = {"wall_s": round(seconds, 1), **ag}
            print(json.dumps(line, default=str), flush=True)
        verdicts += report_task(run, args.bootstrap, seeds)
    print("\nverdicts:")
    for v in verdicts:
        print("  " + v)


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401

        return True
    except ImportError:
        return False


if __name__ == "__main__":
    main()
