"""Train: features, Optuna-tuned CatBoost and the baseline submissions of every task."""
