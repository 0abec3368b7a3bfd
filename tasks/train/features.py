"""Features for CatBoost, built from the release and the CLIP embeddings of one task.

Classification: one row per record. Numeric columns as they are, categorical columns as
CatBoost categorical features, text columns as bag-of-words columns (or CatBoost
text_features), and every embedding as numeric columns, reduced by a PCA fitted on train.

Matching: one row per candidate pair, from per-attribute comparisons of the two records:
string similarities (rapidfuzz ratio, token set, Jaro-Winkler, ...), TF-IDF cosine, numeric
absolute and relative differences, categorical equality, CLIP cosines (image-image,
text-text, image-text), missingness counts; and the same text comparisons once more with
the tokens of both records' categorical values removed ("core" text): a title that spells
colour and size in ("Court Classic Sneaker - Red - Size 42") then compares as the model
name alone, so a model can discount colour and size without a hard-coded vocabulary.

Every feature column records which input roles it uses, so a modality ablation is a filter.
Whatever is fitted (PCA, vocabularies, TF-IDF, centring means) is fitted on train only:
the train table, or the records that occur in train pairs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from rapidfuzz import fuzz, process, utils
from rapidfuzz.distance import JaroWinkler
from sklearn.decomposition import PCA
from sklearn.feature_extraction.text import TfidfVectorizer

from tasks.core.errors import InputError
from tasks.core.params import TrainParams
from tasks.core.progress import Progress
from tasks.core.schema import (
    CARD,
    EMB_MISSING,
    EMB_TABLE,
    EMB_VECTOR,
    EMBEDDING_META,
    ID,
    LABEL,
    LEFT_ID,
    PAIR_ID,
    RIGHT_ID,
    TEXT_EMBEDDING,
    Role,
    TaskType,
    release_tables,
)

MISSING_CATEGORY = "<missing>"  # CatBoost categorical features take strings, never null
TOKEN = re.compile(r"\w+", re.UNICODE)
NUMBER = re.compile(r"\d+")

# ---------------------------------------------------------------------------------------
# inputs: the release and the embeddings


@dataclass(frozen=True)
class Release:
    """One task's public release, read once: card, feature roles and tables."""

    task: str
    type: TaskType
    primary_metric: str
    features: dict[str, Role]
    tables: dict[str, pd.DataFrame]
    classes: list
    card: dict = field(repr=False)

    def columns(self, role: Role) -> list[str]:
        return [name for name, r in self.features.items() if r is role]

    @property
    def record_tables(self) -> tuple[str, ...]:
        return ("train", "test") if self.type is TaskType.classification else ("left", "right")


def load_release(public_dir: Path) -> Release:
    """Read data/public/<task>/: card.json and the Parquet tables it lists."""
    public_dir = Path(public_dir)
    card_path = public_dir / CARD
    if not card_path.is_file():
        raise InputError(
            problem=f"no {CARD} in {public_dir}",
            fix="run the ingest stage for this task first (dvc repro ingest@<task>)",
            task=public_dir.name,
            file=str(card_path),
        )
    card = json.loads(card_path.read_text(encoding="utf-8"))
    task_type = TaskType(card["type"])
    tables = {}
    for name in release_tables(task_type):
        path = public_dir / f"{name}.parquet"
        if not path.is_file():
            raise InputError(
                problem=f"the release lacks {path.name}",
                fix="re-run the ingest stage for this task",
                task=card["task_id"],
                file=str(path),
            )
        tables[name] = pq.read_table(path).to_pandas()
    return Release(
        task=card["task_id"],
        type=task_type,
        primary_metric=card["primary_metric"],
        features={name: Role(role) for name, role in card["features"].items()},
        tables=tables,
        classes=list(card.get("classes", {}).get("classes", [])),
        card=card,
    )


@dataclass(frozen=True)
class Embedding:
    """One embedded column ('text' or an image column): a matrix per record table, in release row order."""

    name: str
    role: Role
    vectors: dict[str, np.ndarray]
    missing: dict[str, np.ndarray]

    @property
    def dim(self) -> int:
        return next(iter(self.vectors.values())).shape[1]


def expected_embeddings(release: Release, embeddings_dir: Path | None = None) -> dict[str, Role]:
    """Which embedding files the embed stage writes for this task (tasks/schema.py): one per
    image column, and the text one unless its meta.json says text was not embedded
    (params embed.text.<task>.columns: [])."""
    text_embedded = bool(release.columns(Role.text))
    meta = Path(embeddings_dir) / EMBEDDING_META if embeddings_dir is not None else None
    if text_embedded and meta is not None and meta.is_file():
        written = json.loads(meta.read_text(encoding="utf-8")).get("files")
        text_embedded = written is None or f"{TEXT_EMBEDDING}.parquet" in written
    expected = {TEXT_EMBEDDING: Role.text} if text_embedded else {}
    expected.update(dict.fromkeys(release.columns(Role.image), Role.image))
    return expected


def load_embeddings(embeddings_dir: Path, release: Release) -> dict[str, Embedding]:
    """Read data/embeddings/<task>/*.parquet and align them with the release rows."""
    embeddings_dir = Path(embeddings_dir)
    out = {}
    for name, role in expected_embeddings(release, embeddings_dir).items():
        path = embeddings_dir / f"{name}.parquet"
        if not path.is_file():
            raise InputError(
                problem=f"no embeddings of '{name}' in {embeddings_dir}",
                fix=f"run the embed stage for this task first (dvc repro embed@{release.task})",
                task=release.task,
                file=str(path),
            )
        table = pq.read_table(path)
        lacking = {EMB_TABLE, ID, EMB_VECTOR, EMB_MISSING} - set(table.column_names)
        if lacking:
            raise InputError(
                problem=f"the embedding file lacks column(s) {', '.join(sorted(lacking))}",
                fix="re-run the embed stage; its output contract is in tasks/schema.py",
                task=release.task,
                file=str(path),
            )
        lengths = np.asarray(table.column(EMB_VECTOR).combine_chunks().value_lengths())
        if len(lengths) and (lengths.min() != lengths.max() or lengths.min() == 0):
            rows = np.flatnonzero(lengths != np.bincount(lengths).argmax())[:20]
            raise InputError(
                problem="embedding vectors differ in length",
                fix="re-run the embed stage",
                task=release.task,
                file=str(path),
                column=EMB_VECTOR,
                rows=rows.tolist(),
            )
        dim = int(lengths[0]) if len(lengths) else 0
        flat = np.asarray(table.column(EMB_VECTOR).combine_chunks().flatten(), dtype=np.float32)
        matrix = flat.reshape(len(lengths), dim)
        index = pd.MultiIndex.from_arrays([table.column(EMB_TABLE).to_pylist(), table.column(ID).to_pylist()])
        if index.has_duplicates:
            raise InputError(
                problem="an (table, id) occurs twice",
                fix="re-run the embed stage",
                task=release.task,
                file=str(path),
                rows=np.flatnonzero(index.duplicated()).tolist(),
            )
        miss = np.asarray(table.column(EMB_MISSING).to_numpy(zero_copy_only=False), dtype=bool)
        vectors, missing = {}, {}
        for tname in release.record_tables:
            ids = release.tables[tname][ID].astype(str)
            pos = index.get_indexer(pd.MultiIndex.from_arrays([[tname] * len(ids), ids.tolist()]))
            if (pos < 0).any():
                lost = np.flatnonzero(pos < 0)
                raise InputError(
                    problem=f"{len(lost)} record(s) of table '{tname}' have no embedding",
                    fix=f"re-run the embed stage (dvc repro embed@{release.task}); the release changed after it ran",
                    task=release.task,
                    file=str(path),
                    rows=lost.tolist(),
                    values=ids.iloc[lost[:5]].tolist(),
                )
            vectors[tname] = matrix[pos]
            missing[tname] = miss[pos] | ~np.isfinite(matrix[pos]).all(axis=1)
        out[name] = Embedding(name=name, role=role, vectors=vectors, missing=missing)
    return out


# ---------------------------------------------------------------------------------------
# the feature table


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # numeric | categorical | text: how CatBoost treats the column
    uses: frozenset[Role]  # the input roles it is computed from


@dataclass(frozen=True)
class FeatureSet:
    """Train and test feature frames of one task with the description of every column."""

    train: pd.DataFrame
    test: pd.DataFrame
    features: tuple[Feature, ...]
    text_processing: dict | None = None  # CatBoost text_processing, when text columns are CatBoost text features

    @property
    def cat_features(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "categorical"]

    @property
    def text_features(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "text"]

    def restrict(self, roles: set[Role]) -> FeatureSet:
        """Keep the features computed from the given input roles only (a modality ablation)."""
        kept = tuple(f for f in self.features if f.uses <= roles)
        names = [f.name for f in kept]
        return replace(self, train=self.train[names], test=self.test[names], features=kept)

    def roles(self) -> set[Role]:
        return set().union(*(f.uses for f in self.features)) if self.features else set()

    def describe(self) -> list[dict]:
        return [{"name": f.name, "kind": f.kind, "uses": sorted(r.value for r in f.uses)} for f in self.features]


class _Columns:
    """Collects feature columns for train and test side by side."""

    def __init__(self) -> None:
        self.train: dict[str, np.ndarray] = {}
        self.test: dict[str, np.ndarray] = {}
        self.features: list[Feature] = []

    def add(self, name: str, train, test, uses: set[Role], kind: str = "numeric") -> None:
        if name in self.train:
            raise ValueError(f"feature {name} twice")
        self.train[name], self.test[name] = train, test
        self.features.append(Feature(name, kind, frozenset(uses)))

    def build(self, n_train: int, n_test: int, text_processing: dict | None = None) -> FeatureSet:
        train = pd.DataFrame(self.train, index=pd.RangeIndex(n_train))
        test = pd.DataFrame(self.test, index=pd.RangeIndex(n_test))
        return FeatureSet(train=train, test=test, features=tuple(self.features), text_processing=text_processing)


def _numeric(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)


def _category(series: pd.Series) -> np.ndarray:
    return series.astype("string").fillna(MISSING_CATEGORY).to_numpy(dtype=object)


def _text(series: pd.Series) -> list[str]:
    return series.astype("string").fillna("").tolist()


def _texts(pair: tuple[pd.Series, pd.Series]) -> tuple[list[str], list[str]]:
    """The text of both sides of a pair of columns."""
    return _text(pair[0]), _text(pair[1])


PAIR_SPLITS = ("train_pairs", "test_pairs")


def _both(fn: Callable[[str], Any]) -> tuple[Any, Any]:
    """fn of the train pairs and of the test pairs: the two arguments of _Columns.add."""
    return fn(PAIR_SPLITS[0]), fn(PAIR_SPLITS[1])


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def _reduce(
    train: np.ndarray, test: np.ndarray, train_missing: np.ndarray, dims: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """PCA fitted on the train rows that have a vector; dims 0 keeps the whole vector."""
    fit_rows = train[~train_missing]
    if dims == 0 or len(fit_rows) < 2:
        return train, test
    k = min(dims, fit_rows.shape[0] - 1, fit_rows.shape[1])
    # the covariance route: one small eigendecomposition (dims x dims) instead of an SVD of the rows
    pca = PCA(n_components=k, svd_solver="covariance_eigh", random_state=seed).fit(fit_rows.astype(np.float64))
    return pca.transform(train.astype(np.float64)), pca.transform(test.astype(np.float64))


def bow_vocabulary(texts: list[str], max_tokens: int, min_count: int) -> list[str]:
    """The most frequent tokens (by documents, ties by token), seen in at least min_count documents."""
    counts: dict[str, int] = {}
    for text in texts:
        for tok in set(tokens(text)):
            counts[tok] = counts.get(tok, 0) + 1
    ranked = sorted((tok for tok, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t))
    return ranked[:max_tokens]


def _bow(texts: list[str], vocabulary: list[str]) -> np.ndarray:
    where = {tok: j for j, tok in enumerate(vocabulary)}
    out = np.zeros((len(texts), len(vocabulary)), dtype=np.float32)
    for i, text in enumerate(texts):
        for tok in set(tokens(text)):
            j = where.get(tok)
            if j is not None:
                out[i, j] = 1.0
    return out


def catboost_text_processing(params: TrainParams) -> dict:
    """A light CatBoost text_processing: lower-cased words, one bag-of-words dictionary.

    CatBoost's default (words and bigrams, BoW and NaiveBayes per class) costs 3-8x the
    time of the rest of a multiclass model on 2 cores; this keeps the same signal cheaper.
    """
    return {
        "tokenizers": [{"tokenizer_id": "Space", "separator_type": "ByDelimiter", "lowercasing": "true"}],
        "dictionaries": [
            {
                "dictionary_id": "Word",
                "max_dictionary_size": str(params.bow_max_tokens),
                "occurrence_lower_bound": str(params.bow_min_count),
                "gram_order": "1",
            }
        ],
        "feature_processing": {
            "default": [{"dictionaries_names": ["Word"], "feature_calcers": ["BoW"], "tokenizers_names": ["Space"]}]
        },
    }


# ---------------------------------------------------------------------------------------
# classification


def classification_features(
    release: Release, embeddings: dict[str, Embedding], params: TrainParams, progress: Progress | None = None
) -> FeatureSet:
    """One row per record of train and test; everything fitted on train."""
    train, test = release.tables["train"], release.tables["test"]
    cols = _Columns()
    progress = progress or Progress("features", None, enabled=False)
    for name in release.columns(Role.numeric):
        cols.add(name, _numeric(train[name]), _numeric(test[name]), {Role.numeric})
    for name in release.columns(Role.categorical):
        cols.add(name, _category(train[name]), _category(test[name]), {Role.categorical}, "categorical")
    text_processing = None
    for name in release.columns(Role.text):
        tr, te = _text(train[name]), _text(test[name])
        if params.text_features == "catboost":
            # CatBoost refuses a text feature that yields no token on train
            if any(tokens(t) for t in tr):
                cols.add(name, np.asarray(tr, dtype=object), np.asarray(te, dtype=object), {Role.text}, "text")
                text_processing = catboost_text_processing(params)
        elif params.text_features == "bow":
            vocabulary = bow_vocabulary(tr, params.bow_max_tokens, params.bow_min_count)
            btr, bte = _bow(tr, vocabulary), _bow(te, vocabulary)
            for j, tok in enumerate(vocabulary):
                cols.add(f"{name}~bow~{tok}", btr[:, j], bte[:, j], {Role.text})
        progress.update(note=f"text column {name}")
    text_cols = release.columns(Role.text)
    if params.text_model and text_cols:
        joined = [[" ".join(parts) for parts in zip(*[_text(t[c]) for c in text_cols])] for t in (train, test)]
        oof, proba, classes = text_model_probabilities(
            joined[0], classification_labels(release), joined[1], params.seed, params.text_model_alpha
        )
        for j, c in enumerate(classes):
            cols.add(f"text_model~p~{c}", oof[:, j], proba[:, j], {Role.text})
        progress.update(note="text model")
    for emb in embeddings.values():
        dims = params.text_pca_dims if emb.role is Role.text else params.image_pca_dims
        reduced = _reduce(emb.vectors["train"], emb.vectors["test"], emb.missing["train"], dims, params.seed)
        vtr, vte = reduced[0].copy(), reduced[1].copy()
        vtr[emb.missing["train"]] = np.nan
        vte[emb.missing["test"]] = np.nan
        for j in range(vtr.shape[1]):
            cols.add(f"{emb.name}~emb~{j:03d}", vtr[:, j], vte[:, j], {emb.role})
        if emb.missing["train"].any() or emb.missing["test"].any():
            cols.add(
                f"{emb.name}~missing",
                emb.missing["train"].astype(np.float32),
                emb.missing["test"].astype(np.float32),
                {emb.role},
            )
        progress.update(note=f"embedding {emb.name}")
    return cols.build(len(train), len(test), text_processing)


def classification_steps(release: Release, embeddings: dict[str, Embedding], params: TrainParams) -> int:
    """How many progress steps classification_features reports: text columns, text model, embeddings."""
    text = release.columns(Role.text)
    return len(text) + int(bool(params.text_model and text)) + len(embeddings)


TEXT_MODEL_FOLDS = 5


def text_model_probabilities(
    train_text: list[str], y: np.ndarray, test_text: list[str], seed: int, alpha: float = 1e-4
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Class probabilities of a linear model (logistic loss) over TF-IDF words and character n-grams.

    Train rows get out-of-fold probabilities (cross-fitting on class-stratified folds), so
    no row's feature comes from a model that saw its label; test rows get those of a model
    fitted on all of train. A linear model over sparse n-grams reads text far better than
    a tree over a bag of words, and the tree then weighs it against the other columns.

    The TF-IDF vocabulary and weights are fitted once on the train texts (no label enters
    them), and the model is SGD on the logistic loss: on a 6,000-row text task the earlier
    lbfgs logistic regression, re-vectorising per fold, took 97% of feature building (692 of
    715 s), SGD is 50-100x faster at the same out-of-fold macro-F1 and log loss on the demo
    tasks (benchmarks/train_features.py).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    classes = sorted(set(y.tolist()), key=str)
    if len(classes) < 2 or not any(t.strip() for t in train_text):
        return np.zeros((len(train_text), 0)), np.zeros((len(test_text), 0)), []
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=int)
    for c in classes:
        rows = np.flatnonzero(y == c)
        fold_of[rows[rng.permutation(len(rows))]] = (
            np.arange(len(rows)) + int(rng.integers(TEXT_MODEL_FOLDS))
        ) % TEXT_MODEL_FOLDS
    vectorizer = _text_vectorizer().fit(train_text)
    train_matrix, test_matrix = vectorizer.transform(train_text), vectorizer.transform(test_text)
    oof = np.zeros((len(y), len(classes)))
    where = {c: j for j, c in enumerate(classes)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for k in range(TEXT_MODEL_FOLDS):
            fit, val = fold_of != k, fold_of == k
            if not val.any() or len(set(y[fit].tolist())) < 2:
                continue
            model = _text_classifier(seed, alpha).fit(train_matrix[fit], y[fit])
            oof[np.ix_(val, [where[c] for c in model.classes_])] = model.predict_proba(train_matrix[val])
        model = _text_classifier(seed, alpha).fit(train_matrix, y)
    proba = np.zeros((len(test_text), len(classes)))
    proba[:, [where[c] for c in model.classes_]] = model.predict_proba(test_matrix)
    return oof, proba, [str(c) for c in classes]


def _text_vectorizer():
    from sklearn.pipeline import make_union

    return make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float64),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, dtype=np.float64),
    )


def _text_classifier(seed: int, alpha: float):
    from sklearn.linear_model import SGDClassifier

    return SGDClassifier(loss="log_loss", alpha=alpha, max_iter=50, tol=1e-4, random_state=seed)


def classification_labels(release: Release) -> np.ndarray:
    return release.tables["train"][LABEL].astype(str).to_numpy(dtype=object)


# ---------------------------------------------------------------------------------------
# matching


@dataclass(frozen=True)
class _Side:
    """Row positions of each pair's left and right record."""

    left: np.ndarray
    right: np.ndarray


def _positions(release: Release, pairs: pd.DataFrame, table_name: str) -> _Side:
    out = []
    for side, key in (("left", LEFT_ID), ("right", RIGHT_ID)):
        ids = pd.Index(release.tables[side][ID].astype(str))
        pos = ids.get_indexer(pairs[key].astype(str))
        if (pos < 0).any():
            lost = np.flatnonzero(pos < 0)
            raise InputError(
                problem=f"{len(lost)} pair(s) name a {side} record that does not exist",
                fix="re-run the ingest stage; the release is inconsistent",
                task=release.task,
                file=f"{table_name}.parquet",
                column=key,
                rows=lost.tolist(),
                values=pairs[key].iloc[lost[:5]].tolist(),
            )
        out.append(pos)
    return _Side(*out)


def _fuzzy(a: list[str], b: list[str], scorer) -> np.ndarray:
    """Similarity in [0, 1] of each pair; NaN where either side is empty."""
    if not a:
        return np.zeros(0)
    sim = process.cpdist(a, b, scorer=scorer, processor=utils.default_process, dtype=np.float64, workers=1)
    if scorer is not JaroWinkler.normalized_similarity:
        sim = sim / 100.0
    empty = np.array([not utils.default_process(x) or not utils.default_process(y) for x, y in zip(a, b)])
    sim[empty] = np.nan
    return sim


STRING_SCORERS = {
    "ratio": fuzz.ratio,
    "token_set": fuzz.token_set_ratio,
    "token_sort": fuzz.token_sort_ratio,
    "partial": fuzz.partial_ratio,
    "jaro_winkler": JaroWinkler.normalized_similarity,
}
CATEGORY_SCORERS = ("ratio", "jaro_winkler")


def _token_overlap(a: list[list[str]], b: list[list[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pair: tokens only on the left, only on the right, and the Jaccard overlap."""
    only_a, only_b, jac = (np.full(len(a), np.nan) for _ in range(3))
    for i, (x, y) in enumerate(zip(a, b)):
        sx, sy = set(x), set(y)
        if not sx or not sy:
            continue
        only_a[i], only_b[i] = len(sx - sy), len(sy - sx)
        jac[i] = len(sx & sy) / len(sx | sy)
    return only_a, only_b, jac


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    num = (a * b).sum(axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


class _PairFrame:
    """Both records of every pair, for the train and the test pairs."""

    def __init__(self, release: Release) -> None:
        self.release = release
        self.sides = {name: _positions(release, release.tables[name], name) for name in ("train_pairs", "test_pairs")}
        left, right = release.tables["left"], release.tables["right"]
        tr = self.sides["train_pairs"]
        # records that occur in train pairs: what fitted transforms may see
        self.fit_left, self.fit_right = np.unique(tr.left), np.unique(tr.right)
        self.left, self.right = left, right

    def values(self, split: str, column: str) -> tuple[pd.Series, pd.Series]:
        side = self.sides[split]
        return self.left[column].iloc[side.left].reset_index(drop=True), self.right[column].iloc[
            side.right
        ].reset_index(drop=True)


def _categorical_tokens(frame: pd.DataFrame, columns: list[str]) -> list[set[str]]:
    """Per record: the tokens of its categorical values ('navy', 'l', 'xl', 'sneakers')."""
    out: list[set[str]] = [set() for _ in range(len(frame))]
    for col in columns:
        for i, value in enumerate(frame[col].astype("string").fillna("").tolist()):
            out[i].update(tokens(value))
    return out


def matching_features(
    release: Release, embeddings: dict[str, Embedding], params: TrainParams, progress: Progress | None = None
) -> FeatureSet:
    """One row per train pair and per test pair; everything fitted on the records of train pairs."""
    progress = progress or Progress("features", None, enabled=False)
    pf = _PairFrame(release)
    n = {split: len(release.tables[split]) for split in ("train_pairs", "test_pairs")}
    cols = _Columns()
    splits = ("train_pairs", "test_pairs")
    text_cols, cat_cols = release.columns(Role.text), release.columns(Role.categorical)

    both = _both

    # text attributes, and the whole record's text
    tfidf_fit = []
    for col in text_cols:
        tfidf_fit += _text(pf.left[col].iloc[pf.fit_left]) + _text(pf.right[col].iloc[pf.fit_right])
    tfidf = (
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), lowercase=True, min_df=1, dtype=np.float64).fit(
            tfidf_fit
        )
        if any(t.strip() for t in tfidf_fit)
        else None
    )
    cat_tokens = {"left": _categorical_tokens(pf.left, cat_cols), "right": _categorical_tokens(pf.right, cat_cols)}
    for col in text_cols:
        pairs_text = {split: _texts(pf.values(split, col)) for split in splits}
        for sname, scorer in STRING_SCORERS.items():
            cols.add(f"{col}~{sname}", *both(lambda s: _fuzzy(*pairs_text[s], scorer)), {Role.text})
        if tfidf is not None:
            cols.add(f"{col}~tfidf_cos", *both(lambda s: _tfidf_cosine(tfidf, *pairs_text[s])), {Role.text})
        toks = {s: ([tokens(t) for t in pairs_text[s][0]], [tokens(t) for t in pairs_text[s][1]]) for s in splits}
        for j, what in enumerate(("only_left", "only_right", "jaccard")):
            cols.add(f"{col}~tokens_{what}", *both(lambda s: _token_overlap(*toks[s])[j]), {Role.text})
        # numbers in the text (model codes, capacities, sizes), however they are written: 'AB-200' = 'ab200'
        nums = {
            s: ([NUMBER.findall(t) for t in pairs_text[s][0]], [NUMBER.findall(t) for t in pairs_text[s][1]])
            for s in splits
        }
        for j, what in enumerate(("only_left", "only_right", "jaccard")):
            cols.add(f"{col}~numbers_{what}", *both(lambda s: _token_overlap(*nums[s])[j]), {Role.text})
        core = {s: _core_text(toks[s], pf.sides[s], cat_tokens) for s in splits} if cat_cols else None
        if core is not None and any(
            a != b
            for a, b in zip(
                core["train_pairs"][0] + core["train_pairs"][1], toks["train_pairs"][0] + toks["train_pairs"][1]
            )
        ):
            core_text = {s: ([" ".join(t) for t in core[s][0]], [" ".join(t) for t in core[s][1]]) for s in splits}
            for sname in ("ratio", "token_set", "jaro_winkler"):
                cols.add(
                    f"{col}~core_{sname}",
                    *both(lambda s: _fuzzy(*core_text[s], STRING_SCORERS[sname])),
                    {Role.text, Role.categorical},
                )
            for j, what in enumerate(("only_left", "only_right", "jaccard")):
                cols.add(
                    f"{col}~core_tokens_{what}",
                    *both(lambda s: _token_overlap(*core[s])[j]),
                    {Role.text, Role.categorical},
                )
            core_nums = {s: tuple([NUMBER.findall(" ".join(t)) for t in side] for side in core[s]) for s in splits}
            for j, what in enumerate(("only_left", "only_right", "jaccard")):
                cols.add(
                    f"{col}~core_numbers_{what}",
                    *both(lambda s: _token_overlap(*core_nums[s])[j]),
                    {Role.text, Role.categorical},
                )
        cols.add(f"{col}~missing", *both(lambda s: _missing_count(*pf.values(s, col))), {Role.text})
        progress.update(note=f"text column {col}")
    if len(text_cols) > 1:

        def joined_text(s: str, side: int) -> list[str]:
            return [" ".join(parts) for parts in zip(*[_text(pf.values(s, c)[side]) for c in text_cols])]

        joined = {s: (joined_text(s, 0), joined_text(s, 1)) for s in splits}
        cols.add("all_text~token_set", *both(lambda s: _fuzzy(*joined[s], fuzz.token_set_ratio)), {Role.text})
        cols.add("all_text~token_sort", *both(lambda s: _fuzzy(*joined[s], fuzz.token_sort_ratio)), {Role.text})

    for col in release.columns(Role.numeric):

        def diffs(split, col=col):
            a, b = (_numeric(v) for v in pf.values(split, col))
            absdiff = np.abs(a - b)
            scale = np.maximum(np.abs(a), np.abs(b))
            with np.errstate(invalid="ignore", divide="ignore"):
                rel = np.where(scale > 0, absdiff / np.where(scale > 0, scale, 1.0), 0.0)
            rel[np.isnan(absdiff)] = np.nan
            return absdiff, rel

        values = both(diffs)
        cols.add(f"{col}~absdiff", values[0][0], values[1][0], {Role.numeric})
        cols.add(f"{col}~reldiff", values[0][1], values[1][1], {Role.numeric})
        cols.add(f"{col}~ratio", *both(lambda s: _ratio(*(_numeric(v) for v in pf.values(s, col)))), {Role.numeric})
        cols.add(f"{col}~missing", *both(lambda s: _missing_count(*pf.values(s, col))), {Role.numeric})
        progress.update(note=f"numeric column {col}")

    for col in cat_cols:

        def equal(split, col=col):
            a, b = (v.astype("string") for v in pf.values(split, col))
            na, nb = (
                [utils.default_process(x) if x is not pd.NA else "" for x in a],
                [utils.default_process(x) if x is not pd.NA else "" for x in b],
            )
            return np.array([float(x == y) if x and y else np.nan for x, y in zip(na, nb)])

        cols.add(f"{col}~equal", *both(equal), {Role.categorical})
        for sname in CATEGORY_SCORERS:
            cols.add(
                f"{col}~{sname}",
                *both(lambda s: _fuzzy(*_texts(pf.values(s, col)), STRING_SCORERS[sname])),
                {Role.categorical},
            )
        cols.add(f"{col}~missing", *both(lambda s: _missing_count(*pf.values(s, col))), {Role.categorical})
        progress.update(note=f"categorical column {col}")

    _matcher_features(cols, pf, release)
    progress.update(note="record comparisons")
    _embedding_pair_features(cols, pf, embeddings, params)
    progress.update(note="embeddings")
    return cols.build(n["train_pairs"], n["test_pairs"])


def matching_steps(release: Release) -> int:
    """How many progress steps matching_features reports: one per column, the record, the embeddings."""
    return sum(len(release.columns(r)) for r in (Role.text, Role.numeric, Role.categorical)) + 2


# what a strong matcher compares beyond per-attribute string similarity
RARE_TOKENS = 3  # per record: its rarest tokens, whose presence on the other side says most
YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?=\d{4}(?!\d)|(?!\d))")  # 1999, 2021-04-01, 19560915
DECIMAL = re.compile(r"\d+(?:[.,]\d+)?")
MIN_YEAR_SHARE = 0.2  # a column compares years when this share of its fit records holds one


def _matcher_features(cols: _Columns, pf: _PairFrame, release: Release) -> None:
    """TF-IDF cosines (words, and characters over the whole record), rare-token overlap,
    numbers and years in text compared as ratios and differences.

    The idf of a token and the vocabularies come from the records of train pairs only.
    """
    splits = ("train_pairs", "test_pairs")
    text_cols, cat_cols = release.columns(Role.text), release.columns(Role.categorical)
    record = {side: _joined(frame, text_cols + cat_cols) for side, frame in (("left", pf.left), ("right", pf.right))}
    attributes = {
        col: {side: _text(frame[col]) for side, frame in (("left", pf.left), ("right", pf.right))} for col in text_cols
    }
    attributes["record"] = record
    for col, texts in attributes.items():
        uses = {Role.text} if col != "record" else {Role.text, Role.categorical}
        fit_texts = [texts["left"][i] for i in pf.fit_left] + [texts["right"][i] for i in pf.fit_right]
        if not any(t.strip() for t in fit_texts):
            continue
        toks = {side: [set(tokens(t)) for t in texts[side]] for side in ("left", "right")}
        idf = _idf([toks["left"][i] for i in pf.fit_left] + [toks["right"][i] for i in pf.fit_right])

        def pairs_of(split: str, values: dict[str, list[Any]]) -> tuple[list[Any], list[Any]]:
            side = pf.sides[split]
            return [values["left"][i] for i in side.left], [values["right"][i] for i in side.right]

        word = TfidfVectorizer(token_pattern=r"(?u)\b\w+\b", lowercase=True, sublinear_tf=True).fit(fit_texts)
        cols.add(f"{col}~tfidf_word_cos", *_both(lambda s: _tfidf_cosine(word, *pairs_of(s, texts))), uses)
        if col == "record":
            chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True).fit(fit_texts)
            cols.add("record~tfidf_cos", *_both(lambda s: _tfidf_cosine(chars, *pairs_of(s, texts))), uses)
        rare = [_rare_overlap(*pairs_of(s, toks), idf) for s in splits]
        for j, what in enumerate(("rare_left_in_right", "rare_right_in_left", "idf_jaccard")):
            cols.add(f"{col}~{what}", rare[0][j], rare[1][j], uses)
        numbers = {side: [_numbers(t) for t in texts[side]] for side in ("left", "right")}
        if any(numbers["left"][i] for i in pf.fit_left):
            cols.add(f"{col}~numbers_ratio", *_both(lambda s: _numbers_ratio(*pairs_of(s, numbers))), uses)
    for col in text_cols + cat_cols:
        values = {side: _text(frame[col]) for side, frame in (("left", pf.left), ("right", pf.right))}
        years = {side: [[int(y) for y in YEAR.findall(v)] for v in values[side]] for side in ("left", "right")}
        fit_years = [years["left"][i] for i in pf.fit_left] + [years["right"][i] for i in pf.fit_right]
        if not fit_years or np.mean([bool(y) for y in fit_years]) < MIN_YEAR_SHARE:
            continue
        out = []
        for split in splits:
            side = pf.sides[split]
            out.append(_year_difference([years["left"][i] for i in side.left], [years["right"][i] for i in side.right]))
        role = Role.text if col in text_cols else Role.categorical
        cols.add(f"{col}~year_absdiff", out[0], out[1], {role})


def _joined(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    if not columns:
        return [""] * len(frame)
    return [" ".join(p for p in parts if p) for parts in zip(*[_text(frame[c]) for c in columns])]


def _idf(documents: list[set[str]]) -> dict[str, float]:
    """Smoothed inverse document frequency, as scikit-learn's TF-IDF computes it."""
    counts: dict[str, int] = {}
    for doc in documents:
        for tok in doc:
            counts[tok] = counts.get(tok, 0) + 1
    n = len(documents)
    return {tok: float(np.log((1 + n) / (1 + c)) + 1) for tok, c in counts.items()} | {"": float(np.log(1 + n) + 1)}


def _rare_overlap(a: list[set[str]], b: list[set[str]], idf: dict[str, float]) -> tuple[np.ndarray, ...]:
    """Per pair: the share of the left record's rarest tokens found on the right, the same the
    other way, and the idf-weighted Jaccard overlap. A token never seen in fitting is the rarest."""
    unseen = idf[""]
    out = [np.full(len(a), np.nan) for _ in range(3)]
    for i, (x, y) in enumerate(zip(a, b)):
        if not x or not y:
            continue
        rare_x = sorted(x, key=lambda t: (-idf.get(t, unseen), t))[:RARE_TOKENS]
        rare_y = sorted(y, key=lambda t: (-idf.get(t, unseen), t))[:RARE_TOKENS]
        out[0][i] = sum(t in y for t in rare_x) / len(rare_x)
        out[1][i] = sum(t in x for t in rare_y) / len(rare_y)
        union = sum(idf.get(t, unseen) for t in x | y)
        out[2][i] = sum(idf.get(t, unseen) for t in x & y) / union
    return tuple(out)


def _numbers(text: str) -> list[float]:
    return [float(m.replace(",", ".")) for m in DECIMAL.findall(text)]


def _numbers_ratio(a: list[list[float]], b: list[list[float]]) -> np.ndarray:
    """Per pair: how close the numbers of both texts are, as ratios: each number's best min/max
    ratio against the other side's numbers, averaged both ways (650 W vs 600 W: 0.92)."""
    out = np.full(len(a), np.nan)
    for i, (x, y) in enumerate(zip(a, b)):
        if not x or not y:
            continue
        xs, ys = np.abs(np.asarray(x)), np.abs(np.asarray(y))
        r = _ratio(xs[:, None], ys[None, :])
        r = np.where(np.isnan(r), 0.0, r)
        out[i] = (r.max(axis=1).mean() + r.max(axis=0).mean()) / 2
    return out


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """min / max of two magnitudes: 1 when equal, towards 0 as they drift apart; NaN when either is missing."""
    a, b = np.abs(np.asarray(a, dtype=np.float64)), np.abs(np.asarray(b, dtype=np.float64))
    low, high = np.minimum(a, b), np.maximum(a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(high > 0, low / np.where(high > 0, high, 1.0), np.where(np.isnan(high), np.nan, 1.0))


def _year_difference(a: list[list[int]], b: list[list[int]]) -> np.ndarray:
    """Per pair: the smallest difference in years between a year of each side; NaN when a side has none."""
    out = np.full(len(a), np.nan)
    for i, (x, y) in enumerate(zip(a, b)):
        if x and y:
            out[i] = float(np.min(np.abs(np.subtract.outer(x, y))))
    return out


def _missing_count(a: pd.Series, b: pd.Series) -> np.ndarray:
    """0, 1 or 2: how many of the two records lack the attribute."""

    def miss(s: pd.Series) -> np.ndarray:
        m = s.isna().to_numpy()
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            m = m | (s.astype("string").fillna("").str.strip() == "").to_numpy()
        return m

    return miss(a).astype(np.float64) + miss(b).astype(np.float64)


def _tfidf_cosine(tfidf: TfidfVectorizer, a: list[str], b: list[str]) -> np.ndarray:
    if not a:
        return np.zeros(0)
    va, vb = tfidf.transform(a), tfidf.transform(b)  # rows are L2-normalised
    sim = np.asarray(va.multiply(vb).sum(axis=1)).ravel()
    empty = np.array([not x.strip() or not y.strip() for x, y in zip(a, b)])
    sim[empty] = np.nan
    return sim


def _core_text(
    toks: tuple[list[list[str]], list[list[str]]], side: _Side, cat_tokens: dict[str, list[set[str]]]
) -> tuple[list[list[str]], list[list[str]]]:
    """Both texts without the tokens of either record's categorical values (colour, size...)."""
    left, right = [], []
    for i, (a, b) in enumerate(zip(*toks)):
        drop = cat_tokens["left"][side.left[i]] | cat_tokens["right"][side.right[i]]
        left.append([t for t in a if t not in drop])
        right.append([t for t in b if t not in drop])
    return left, right


def _embedding_pair_features(
    cols: _Columns, pf: _PairFrame, embeddings: dict[str, Embedding], params: TrainParams
) -> None:
    splits = ("train_pairs", "test_pairs")
    for emb in embeddings.values():
        fit = np.concatenate(
            [
                emb.vectors["left"][pf.fit_left][~emb.missing["left"][pf.fit_left]],
                emb.vectors["right"][pf.fit_right][~emb.missing["right"][pf.fit_right]],
            ]
        ).astype(np.float64)
        centre = fit.mean(axis=0) if len(fit) else np.zeros(emb.dim)

        def pair(split, emb=emb):
            side = pf.sides[split]
            a, b = (
                emb.vectors["left"][side.left].astype(np.float64),
                emb.vectors["right"][side.right].astype(np.float64),
            )
            gone = emb.missing["left"][side.left] | emb.missing["right"][side.right]
            return a, b, gone

        def masked(values, gone):
            values = values.copy()
            values[gone] = np.nan
            return values

        def cosines(split, shift=None, pair=pair):
            a, b, gone = pair(split)
            return masked(_cosine(a, b) if shift is None else _cosine(a - shift, b - shift), gone)

        raw = _both(cosines)
        centred = _both(lambda s: cosines(s, centre))
        cols.add(f"{emb.name}~clip_cos", *raw, {emb.role})
        cols.add(f"{emb.name}~clip_cos_centred", *centred, {emb.role})
        if params.pair_vector_dims and len(fit) > 2:
            k = min(params.pair_vector_dims, fit.shape[0] - 1, fit.shape[1])
            pca = PCA(n_components=k, svd_solver="covariance_eigh", random_state=params.seed).fit(fit)
            prods = []
            for a, b, g in map(pair, splits):
                pa_, pb_ = pca.transform(a), pca.transform(b)
                prods.append((masked(pa_ * pb_, g), masked(np.abs(pa_ - pb_), g)))
            for j in range(k):
                cols.add(f"{emb.name}~pc{j:02d}_product", prods[0][0][:, j], prods[1][0][:, j], {emb.role})
                cols.add(f"{emb.name}~pc{j:02d}_absdiff", prods[0][1][:, j], prods[1][1][:, j], {emb.role})
        if emb.missing["left"].any() or emb.missing["right"].any():
            cols.add(
                f"{emb.name}~clip_missing",
                *_both(
                    lambda s: (
                        emb.missing["left"][pf.sides[s].left].astype(float)
                        + emb.missing["right"][pf.sides[s].right].astype(float)
                    )
                ),
                {emb.role},
            )
    # image-text: meaningful when the two towers share a space (pretrained CLIP)
    text = embeddings.get(TEXT_EMBEDDING)
    for emb in embeddings.values():
        if emb.role is not Role.image or text is None:
            continue
        values = []
        for split in splits:
            side = pf.sides[split]
            a = _cosine(
                emb.vectors["left"][side.left].astype(np.float64), text.vectors["right"][side.right].astype(np.float64)
            )
            b = _cosine(
                text.vectors["left"][side.left].astype(np.float64), emb.vectors["right"][side.right].astype(np.float64)
            )
            a[emb.missing["left"][side.left] | text.missing["right"][side.right]] = np.nan
            b[text.missing["left"][side.left] | emb.missing["right"][side.right]] = np.nan
            values.append(np.nanmean(np.vstack([a, b]), axis=0) if len(a) else a)
        cols.add(f"{emb.name}~clip_cos_text", values[0], values[1], {Role.image, Role.text})


def matching_labels(release: Release) -> np.ndarray:
    return release.tables["train_pairs"][LABEL].astype(int).to_numpy()


def build_features(
    release: Release, embeddings: dict[str, Embedding], params: TrainParams, progress: bool = False
) -> FeatureSet:
    """The feature set of a task, by its type; `progress` reports each step done (lines or a bar)."""
    classification = release.type is TaskType.classification
    steps = classification_steps(release, embeddings, params) if classification else matching_steps(release)
    with Progress(f"features {release.task}", steps, "steps", enabled=progress) as bar:
        if classification:
            return classification_features(release, embeddings, params, bar)
        return matching_features(release, embeddings, params, bar)


def labels(release: Release) -> np.ndarray:
    return classification_labels(release) if release.type is TaskType.classification else matching_labels(release)


def test_keys(release: Release) -> pd.Series:
    """The key column of a submission row: record id (classification) or pair id (matching)."""
    if release.type is TaskType.classification:
        return release.tables["test"][ID].astype(str)
    return release.tables["test_pairs"][PAIR_ID].astype(str)


def pair_groups(release: Release) -> np.ndarray:
    """Train pairs linked by a shared record form one group (connected components), as ingest splits them."""
    pairs = release.tables["train_pairs"]
    nodes = {}
    parent: list[int] = []

    def node(key):
        if key not in nodes:
            nodes[key] = len(parent)
            parent.append(len(parent))
        return nodes[key]

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for lid, rid in zip(pairs[LEFT_ID].astype(str), pairs[RIGHT_ID].astype(str)):
        a, b = (
            find(node(("l", lid))),
            find(node(("r", rid))),
        )
        if a != b:
            parent[max(a, b)] = min(a, b)
    roots = [find(nodes[("l", lid)]) for lid in pairs[LEFT_ID].astype(str)]
    _, group = np.unique(roots, return_inverse=True)
    return group


__all__ = [
    "Embedding",
    "Feature",
    "FeatureSet",
    "Release",
    "build_features",
    "labels",
    "load_embeddings",
    "load_release",
    "pair_groups",
    "test_keys",
]
