"""Demo teams: seeded, deliberately different participants that submit like real ones.

They read the public release only (never the hidden labels: they are not given the path) and
submit through `tasks.submit.submit`, the same validation and storage as `mmtc submit`. What
they do is set in params.yaml under `demo_teams`:

* `rules`: a OneR classifier (the single feature whose value -> majority class rule fits the
  train set best) and fuzzy matching of the records' text with a threshold tuned on the train
  pairs; matching files carry a `score`. Each later submission uses a wider choice of rules.
* `noisy-copy`: the `rules` predictions with a share of them scrambled, several tries: the
  best-public selection and, once closed, the public-private gap have something to show.
* `broken-then-majority`: a first file with a misspelt class and a repeated id (rejected),
  then the majority class and exact-title matching.
* `tasks:` limits a team to some tasks: the others count 0 on the board and show as missing.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from tasks.core.params import DemoTeamsParams, Phase, SubmitParams
from tasks.core.schema import CARD, ID, LABEL, LEFT_ID, PAIR_ID, REJECTED_DIR, RIGHT_ID, SCORE, TaskType
from tasks.submissions.submit import SubmitResult, submit
from tasks.submissions.validate import TaskContract

MIN_RULE_SUPPORT = 3  # a feature value needs this many train rows to get its own rule


@dataclass
class PublicTask:
    """One task of the release, as a participant sees it."""

    task: str
    task_type: TaskType
    card: dict
    folder: Path

    def table(self, stem: str) -> pd.DataFrame:
        return pd.read_parquet(self.folder / f"{stem}.parquet")

    def features(self, *roles: str) -> list[str]:
        return [name for name, role in self.card["features"].items() if role in roles]


def load_public(public_root: Path, tasks: list[str]) -> dict[str, PublicTask]:
    out = {}
    for task in tasks:
        folder = Path(public_root) / task
        card = json.loads((folder / CARD).read_text(encoding="utf-8"))
        out[task] = PublicTask(task, TaskType(card["type"]), card, folder)
    return out


# --- classification: OneR ---------------------------------------------------------------------------


def _rule_columns(
    train: pd.DataFrame, test: pd.DataFrame, t: PublicTask, wide: bool
) -> dict[str, tuple[pd.Series, pd.Series]]:
    """Candidate single-feature keys: categoricals, numeric quartiles and, when wide, words of text."""
    keys = {}
    for col in t.features("categorical"):
        keys[col] = (train[col].astype("string").fillna(""), test[col].astype("string").fillna(""))
    for col in t.features("numeric"):
        edges = (
            np.unique(np.nanquantile(train[col].to_numpy(dtype=float), [0.25, 0.5, 0.75]))
            if train[col].notna().any()
            else np.array([])
        )
        keys[f"{col} quartile"] = tuple(
            pd.Series(np.digitize(df[col].to_numpy(dtype=float), edges))
            .astype(str)
            .where(df[col].notna().to_numpy(), "")
            for df in (train, test)
        )
    if wide:
        for col in t.features("text"):
            for which, pick in (("first", 0), ("last", -1)):
                keys[f"{col} {which} word"] = tuple(
                    df[col].fillna("").str.lower().str.split().str[pick].fillna("") for df in (train, test)
                )
    return keys


def one_rule(t: PublicTask, wide: bool) -> pd.DataFrame:
    train, test = t.table("train"), t.table("test")
    labels = train[LABEL].astype(str)
    majority = labels.value_counts().sort_index().idxmax()
    best: tuple[float, str, pd.Series] = (-1.0, "", pd.Series([majority] * len(test), dtype=object))
    for name, (k_train, k_test) in sorted(_rule_columns(train, test, t, wide).items()):
        frame = pd.DataFrame({"key": k_train.to_numpy(), "label": labels.to_numpy()})
        counts = (
            frame.groupby(["key", "label"])
            .size()
            .reset_index(name="n")
            .sort_values(["key", "n", "label"], ascending=[True, False, True])
        )
        support = frame.groupby("key").size()
        rule = counts.drop_duplicates("key").set_index("key")["label"]
        rule = rule[support.reindex(rule.index) >= MIN_RULE_SUPPORT]
        fitted = frame["key"].map(rule).fillna(majority)
        accuracy = float((fitted == frame["label"]).mean())
        if accuracy > best[0]:
            best = (accuracy, name, k_test.map(rule).fillna(majority))
    return pd.DataFrame({ID: test[ID].astype(str), LABEL: best[2].astype(str).to_numpy()})


def majority(t: PublicTask) -> pd.DataFrame:
    train, test = t.table("train"), t.table("test")
    label = train[LABEL].astype(str).value_counts().sort_index().idxmax()
    return pd.DataFrame({ID: test[ID].astype(str), LABEL: label})


# --- matching: fuzzy text ---------------------------------------------------------------------------


def _record_text(t: PublicTask, records: pd.DataFrame) -> pd.Series:
    cols = t.features("text", "categorical")
    text = records[cols].astype("string").fillna("").agg(" ".join, axis=1).str.lower()
    return pd.Series(text.to_numpy(), index=records[ID].astype(str))


def fuzzy_match(t: PublicTask, wide: bool) -> pd.DataFrame:
    left, right = t.table("left"), t.table("right")
    lt, rt = _record_text(t, left), _record_text(t, right)
    scorer = fuzz.token_set_ratio if wide else fuzz.ratio

    def similarity(pairs: pd.DataFrame) -> np.ndarray:
        a = lt.loc[pairs[LEFT_ID].astype(str)].tolist()
        b = rt.loc[pairs[RIGHT_ID].astype(str)].tolist()
        return np.asarray(process.cpdist(a, b, scorer=scorer, workers=1), dtype=float) / 100.0

    train, test = t.table("train_pairs"), t.table("test_pairs")
    s_train, y_train = similarity(train), train[LABEL].to_numpy()
    threshold, best = 0.5, -1.0
    for cut in np.unique(np.round(s_train, 3)):
        pred = s_train >= cut
        tp = int((pred & (y_train == 1)).sum())
        f1 = 2 * tp / max(int(pred.sum()) + int((y_train == 1).sum()), 1)
        if f1 > best:
            threshold, best = float(cut), f1
    s_test = similarity(test)
    return pd.DataFrame(
        {PAIR_ID: test[PAIR_ID].astype(str), LABEL: (s_test >= threshold).astype(int), SCORE: np.round(s_test, 6)}
    )


def exact_title(t: PublicTask) -> pd.DataFrame:
    left, right, test = t.table("left"), t.table("right"), t.table("test_pairs")
    lt, rt = _record_text(t, left), _record_text(t, right)
    same = lt.loc[test[LEFT_ID].astype(str)].to_numpy() == rt.loc[test[RIGHT_ID].astype(str)].to_numpy()
    return pd.DataFrame({PAIR_ID: test[PAIR_ID].astype(str), LABEL: same.astype(int)})


# --- strategies -------------------------------------------------------------------------------------


def _rules(t: PublicTask, attempt: int, rng: np.random.Generator, noise: float) -> pd.DataFrame:
    wide = attempt > 0
    return one_rule(t, wide) if t.task_type is TaskType.classification else fuzzy_match(t, wide)


def _noisy(t: PublicTask, attempt: int, rng: np.random.Generator, noise: float) -> pd.DataFrame:
    preds = _rules(t, 1, rng, noise)
    flip = rng.random(len(preds)) < noise
    if t.task_type is TaskType.classification:
        classes = np.array(t.card["classes"]["classes"], dtype=object)
        preds.loc[flip, LABEL] = classes[rng.integers(0, len(classes), int(flip.sum()))]
    else:
        preds.loc[flip, LABEL] = 1 - preds.loc[flip, LABEL]
        preds = preds.drop(columns=[SCORE])
    return preds


def _majority(t: PublicTask, attempt: int, rng: np.random.Generator, noise: float) -> pd.DataFrame:
    preds = majority(t) if t.task_type is TaskType.classification else exact_title(t)
    if attempt == 0 and t.task_type is TaskType.classification:
        preds = pd.concat([preds, preds.iloc[:1]], ignore_index=True)  # a repeated id
        preds.loc[len(preds) // 2, LABEL] = str(preds.loc[len(preds) // 2, LABEL]).rstrip("s") + "z"  # a misspelt class
    return preds


STRATEGIES = {"rules": _rules, "noisy-copy": _noisy, "broken-then-majority": _majority}
# How each strategy writes its files, so that both formats travel the whole path.
FORMATS = {
    "rules": {TaskType.classification: "csv", TaskType.matching: "parquet"},
    "noisy-copy": {},
    "broken-then-majority": {},
}


def generate_demo_teams(
    public_root: Path,
    submissions_root: Path,
    contracts: dict[str, TaskContract],
    submit_params: SubmitParams,
    params: DemoTeamsParams,
    opens_at: str,
    phases: Sequence[Phase] | None = None,
) -> list[SubmitResult]:
    """Replace the demo teams' submissions with freshly generated ones, submitted in time order.

    Each is checked against `phases` at its own (past) time; `challenge.closed` is not applied:
    closing the demo must not rewrite the history it simulates."""
    submissions_root = Path(submissions_root)
    opens = datetime.fromisoformat(opens_at.replace("Z", "+00:00")).astimezone(UTC)
    public = load_public(public_root, list(contracts))
    planned = []
    for team, plan in params.teams.items():
        shutil.rmtree(submissions_root / team, ignore_errors=True)
        shutil.rmtree(submissions_root / REJECTED_DIR / team, ignore_errors=True)
        team_seed = zlib.crc32(team.encode())
        for attempt, day in enumerate(plan.days):
            rng = np.random.default_rng([params.seed, team_seed, attempt])
            when = opens + timedelta(days=day, seconds=int(rng.integers(8 * 3600, 20 * 3600)))
            planned.append((when, team, attempt, plan, rng))
    results = []
    for when, team, attempt, plan, rng in sorted(planned, key=lambda p: (p[0], p[1], p[2])):
        tasks = [t for t in contracts if plan.tasks is None or t in plan.tasks]
        with tempfile.TemporaryDirectory(prefix="mmtc-demo-team-") as tmp:
            folder = Path(tmp) / f"{team}-{attempt + 1}"
            folder.mkdir()
            for task in tasks:
                t = public[task]
                preds = STRATEGIES[plan.strategy](t, attempt, rng, plan.noise)
                fmt = FORMATS[plan.strategy].get(t.task_type, "csv")
                if fmt == "parquet":
                    preds.to_parquet(folder / f"{task}.parquet", index=False)
                else:
                    preds.to_csv(folder / f"{task}.csv", index=False)
            description = f"demo team ({plan.strategy}), attempt {attempt + 1}"
            results.append(
                submit(
                    folder,
                    team,
                    submissions_root=submissions_root,
                    contracts=contracts,
                    params=submit_params,
                    name=f"attempt-{attempt + 1}",
                    description=description,
                    now=when,
                    phases=phases,
                )
            )
    return results
