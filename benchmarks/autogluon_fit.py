"""Fit AutoGluon's TabularPredictor on one prepared table and write its test predictions.

Runs in AutoGluon's own virtual environment (benchmarks/.venv-autogluon: AutoGluon 1.6.3 pins
pyarrow < 25, this project pins 26), called by benchmarks/baseline_quality.py --reference
autogluon, which prepares the tables with the project's code. It imports nothing from mmtc.

    benchmarks/.venv-autogluon/bin/python benchmarks/autogluon_fit.py --train train.parquet
        --test test.parquet --label label --problem multiclass --metric f1_macro
        --time-limit 60 --seed 7 --out predictions.parquet [--preset best_quality]

Writes predictions.parquet (row, label[, score]) and prints one JSON line: fit seconds, models.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--label", default="label")
    ap.add_argument("--problem", choices=["binary", "multiclass"], required=True)
    ap.add_argument("--metric", required=True, help="AutoGluon metric name: f1_macro, accuracy, f1, ...")
    ap.add_argument("--time-limit", type=float, required=True, help="seconds for fit()")
    ap.add_argument("--preset", default="best_quality")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    from autogluon.tabular import TabularPredictor

    train = pd.read_parquet(args.train)
    test = pd.read_parquet(args.test)
    with tempfile.TemporaryDirectory(prefix="mmtc-autogluon-") as path:
        start = time.perf_counter()
        predictor = TabularPredictor(
            label=args.label, problem_type=args.problem, eval_metric=args.metric, path=path, verbosity=1
        ).fit(
            train,
            presets=args.preset,
            time_limit=args.time_limit,
            ag_args_ensemble={"model_random_seed": args.seed},
            # best_quality holds out a quarter of the time to choose its stacking (DyStack); at these
            # budgets that sub-fit ends past the limit and nothing is left for the real fit
            dynamic_stacking=False,
            # calibrated below, as fit's "auto" would, but a calibration outside [0, 1] (seen on
            # product_dedup: AutoGluon 1.6.3 asserts in set_decision_threshold and loses the whole fit)
            # keeps the 0.5 threshold and says so instead
            calibrate_decision_threshold=False,
        )
        threshold: float | str | None = None
        # fit's "auto" rule: binary, a metric that needs the class (not accuracy or precision), >= 50 rows
        rows = getattr(predictor._trainer, "num_rows_val_for_calibration", 0)
        if args.problem == "binary" and args.metric not in ("accuracy", "precision") and rows >= 50:
            calibrated = float(predictor.calibrate_decision_threshold())
            if 0.0 <= calibrated <= 1.0:
                predictor.set_decision_threshold(calibrated)
                threshold = round(calibrated, 4)
            else:
                threshold = f"calibration gave {calibrated}, kept 0.5"
        fit_s = time.perf_counter() - start
        out = pd.DataFrame({"row": range(len(test)), "label": predictor.predict(test).to_numpy()})
        if args.problem == "binary":
            out["score"] = predictor.predict_proba(test).iloc[:, -1].to_numpy()
        predict_s = time.perf_counter() - start - fit_s
        models = predictor.model_names()
        best = predictor.model_best
    out.to_parquet(args.out, index=False)
    print(
        json.dumps(
            {
                "fit_s": round(fit_s, 1),
                "predict_s": round(predict_s, 1),
                "models": len(models),
                "best": best,
                "threshold": threshold,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
