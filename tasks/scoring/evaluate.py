"""Score every stored submission against the hidden labels, in DuckDB SQL.

The metrics live in the `.sql` files beside this module; they read the submitted files and the
hidden labels directly (one query per task over all files of that task). Scores are cached by
(file sha256, hidden labels sha256, scorer version): a run with nothing new reads the cache
only, and a change of labels or of the scorer rescores everything. The scorer version is a hash
of every file of this folder (the SQL and the code that reads submission files), so it changes
by itself when any of them does.

Only the canonical twin of each task file is read (`<task>.canonical.parquet`, written by
`submit()` from what it validated): a file is never parsed a second time with other rules, and a
stored file without one (it did not come in through `submit()`) is reported, not scored.

Outputs: `results/scores.parquet` (one row per submission x task x split x metric, byte-stable),
`results/scores.duckdb` (the same, with submissions and tasks, for ad-hoc queries),
`results/evaluation.json` (what was scored; labels hashes; entries that could not be scored).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import ValidationError

from tasks.core import metrics as metrics_module
from tasks.core.errors import InputError
from tasks.core.files import sha256_file, write_json, write_parquet
from tasks.core.metrics import count_metrics, metrics_of
from tasks.core.moderation import excluded
from tasks.core.params import EvaluateParams
from tasks.core.schema import (
    BASELINE_PREFIX,
    BOOTSTRAP_COUNTS,
    BOOTSTRAP_GROUPS,
    CARD,
    CONFUSION,
    EVALUATION_REPORT,
    ID,
    LEFT_ID,
    PAIR_ID,
    PR_CURVES,
    REJECTED_DIR,
    REJECTION_META,
    RIGHT_ID,
    SCORE,
    SCORE_CACHE_DIR,
    SCORES,
    SCORES_DB,
    SUBMISSION_FORMATS,
    SUBMISSION_META,
    SubmissionRecord,
    TaskType,
    canonical_name,
    hidden_labels_path,
)

SQL_DIR = Path(__file__).parent
JUDGED_SQL = "judged.sql"  # predictions joined to the hidden labels, read by every metric
# The metrics themselves are the registry's (tasks/core/metrics.py): count metrics are SQL
# aggregates over per-class confusion counts, which these files compute per file and part.
COUNTS_SQL: dict[TaskType, str] = {
    TaskType.classification: "class_counts_classification.sql",
    TaskType.matching: "class_counts_matching.sql",
}
BOOTSTRAP_SQL: dict[TaskType, str] = {
    TaskType.classification: "bootstrap_counts_classification.sql",
    TaskType.matching: "bootstrap_counts_matching.sql",
}
CONFUSION_SQL = "confusion.sql"
PR_CURVE_SQL = "pr_curve.sql"
METRICS: dict[TaskType, tuple[str, ...]] = {t: tuple(m.name for m in metrics_of(t)) for t in TaskType}
SPLITS = ("public", "private", "all")
CACHE_FILE = "scores.parquet"
# Beside each file's scores the cache keeps what the board needs of its rows (never re-read
# later): the bootstrap's counts per resampling group, the confusion matrix, the PR curve.
DETAIL_SCHEMAS: dict[str, pa.Schema] = {
    "bootstrap_counts": pa.schema(
        [("split", pa.string()), ("grp", pa.int32()), ("truth", pa.string()), ("pred", pa.string()), ("n", pa.int32())]
    ),
    "confusion": pa.schema([("split", pa.string()), ("truth", pa.string()), ("pred", pa.string()), ("n", pa.int32())]),
    "pr_curves": pa.schema(
        [("split", pa.string()), ("threshold", pa.float64()), ("tp", pa.int32()), ("fp", pa.int32())]
    ),
}
DETAIL_OUTPUTS = {"bootstrap_counts": BOOTSTRAP_COUNTS, "confusion": CONFUSION, "pr_curves": PR_CURVES}
DETAIL_KEYS = ["task", "file_sha256", "labels_sha256", "scorer_version"]
GROUPS_SCHEMA = pa.schema(
    [("task", pa.string()), ("split", pa.string()), ("grp", pa.int32()), ("truth", pa.string()), ("n", pa.int32())]
)

CACHE_SCHEMA = pa.schema(
    [
        ("task", pa.string()),
        ("file_sha256", pa.string()),
        ("labels_sha256", pa.string()),
        ("scorer_version", pa.string()),
        ("split", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
    ]
)
SCORES_SCHEMA = pa.schema(
    [
        ("team", pa.string()),
        ("submission_id", pa.string()),
        ("submission", pa.string()),  # <team>/<folder>: unique, the folder under submissions/
        ("name", pa.string()),
        ("baseline", pa.bool_()),
        ("submitted_at", pa.string()),
        ("task", pa.string()),
        ("track", pa.string()),
        ("split", pa.string()),
        ("metric", pa.string()),
        ("primary", pa.bool_()),
        ("value", pa.float64()),
        ("file", pa.string()),
        ("file_sha256", pa.string()),
        ("labels_sha256", pa.string()),
        ("scorer_version", pa.string()),
    ]
)


def scorer_version(folder: Path | None = None) -> str:
    """A hash of every file of the scoring folder: any change to a metric's SQL or to the code
    that reads submission files rescores everything (no version number to remember to bump)."""
    folder = Path(folder or SQL_DIR)
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\n")
    registry = Path(metrics_module.__file__)  # the metrics' SQL lives in the registry
    h.update(b"registry\0" + registry.read_bytes())
    return h.hexdigest()[:16]


# --- what is scored ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskInfo:
    task: str
    task_type: TaskType
    track: str
    primary_metric: str
    title: str
    labels: Path
    labels_sha256: str
    pairs: Path | None = None  # matching: the release's test pairs (which pairs share a record)

    @property
    def key(self) -> str:
        return ID if self.task_type is TaskType.classification else PAIR_ID


def unreleased_tasks(public_root: Path, private_root: Path, tasks: Sequence[str]) -> dict[str, str]:
    """task -> why it cannot be scored (no release or no hidden labels: its ingest failed or has not run)."""
    missing = {}
    for task in tasks:
        card_path = Path(public_root) / task / CARD
        labels = hidden_labels_path(private_root, task)
        if not card_path.is_file() or not labels.is_file():
            missing[task] = (
                f"no release or no hidden labels ({card_path} or its labels not found): its ingest failed or has not run"
            )
    return missing


def load_tasks(public_root: Path, private_root: Path, tasks: Sequence[str]) -> dict[str, TaskInfo]:
    """The tasks that can be scored; one without a release is left out (the others go on), and
    when none can be scored it raises."""
    infos = {}
    missing = unreleased_tasks(public_root, private_root, tasks)
    if tasks and len(missing) == len(tasks):
        raise InputError(
            problem="no task of the challenge has a release and hidden labels",
            fix="build them first: dvc repro (ingest)",
        )
    for task in tasks:
        card_path = Path(public_root) / task / CARD
        labels = hidden_labels_path(private_root, task)
        if task in missing:
            continue
        card = json.loads(card_path.read_text(encoding="utf-8"))
        infos[task] = TaskInfo(
            task,
            TaskType(card["type"]),
            card["track"],
            card["primary_metric"],
            card["title"],
            labels,
            sha256_file(labels),
            Path(public_root) / task / "test_pairs.parquet" if card["type"] == TaskType.matching.value else None,
        )
    return infos


@dataclass(frozen=True)
class StoredSubmission:
    submission: str  # <team>/<folder>
    folder: Path
    record: SubmissionRecord


@dataclass(frozen=True)
class FileToScore:
    """One task file of a submission; `path` and `sha256` are its canonical twin's, the file scored."""

    submission: StoredSubmission
    task: str
    name: str  # the file as sent (shown on the board and in the results)
    path: Path
    sha256: str


def discover(submissions_root: Path) -> tuple[list[StoredSubmission], list[dict]]:
    """Every stored submission, in a total order, and the folders that are not sound submissions."""
    found: list[StoredSubmission] = []
    invalid: list[dict] = []
    root = Path(submissions_root)
    if not root.is_dir():
        return found, invalid
    for team_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        for folder in sorted(p for p in team_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            key = f"{team_dir.name}/{folder.name}"
            try:
                found.append(StoredSubmission(key, folder, _check_stored(team_dir.name, folder)))
            except ValueError as exc:
                invalid.append({"submission": key, "problem": str(exc)})
    return found, invalid


def _check_stored(team: str, folder: Path) -> SubmissionRecord:
    meta = folder / SUBMISSION_META
    if not meta.is_file():
        raise ValueError(f"no {SUBMISSION_META}")
    try:
        record = SubmissionRecord.model_validate_json(meta.read_bytes())
    except ValidationError as exc:
        raise ValueError(f"{SUBMISSION_META} does not match the contract: {exc.errors()[0]['msg']}") from None
    if record.team != team:
        raise ValueError(f"{SUBMISSION_META} names team '{record.team}' but lies under '{team}'")
    if record.baseline != team.startswith(BASELINE_PREFIX):
        raise ValueError(f"only teams named '{BASELINE_PREFIX}*' are baselines, and they must say baseline: true")
    if not record.baseline and record.submission_id != folder.name:
        raise ValueError(f"submission_id '{record.submission_id}' differs from its folder name")
    for name in record.files:
        path = folder / name
        if Path(name).suffix not in SUBMISSION_FORMATS or Path(name).name != name:
            raise ValueError(f"file name '{name}' is not <task>.csv or <task>.parquet")
        if path.is_symlink() or not path.is_file():
            raise ValueError(f"file '{name}' is missing or not a regular file")
        scored = canonical_name(name.rsplit(".", 1)[0])
        if scored not in record.canonical:  # only what submit() validated is ever scored
            raise ValueError(f"file '{name}' has no validated twin {scored}: it did not come in through submit()")
        if (folder / scored).is_symlink() or not (folder / scored).is_file():
            raise ValueError(f"file '{scored}' is missing or not a regular file")
    return record


def rejected_counts(submissions_root: Path) -> dict[str, int]:
    """Rejected submissions per team (they are recorded, never scored)."""
    root = Path(submissions_root) / REJECTED_DIR
    counts = {}
    if root.is_dir():
        for team_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            n = sum(1 for p in team_dir.iterdir() if (p / REJECTION_META).is_file())
            if n:
                counts[team_dir.name] = n
    return counts


# --- the report --------------------------------------------------------------------------------


@dataclass
class EvaluationReport:
    submissions: int
    files: int
    scored: int  # (task, file content) pairs scored in this run
    cached: int  # ... read from the cache
    invalid: list[dict]
    ignored: list[dict]
    scorer_version: str
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        t = ", ".join(f"{k} {v:.2f}s" for k, v in self.seconds.items())
        bad = f"; {len(self.invalid)} not scored (see {EVALUATION_REPORT})" if self.invalid else ""
        return f"{self.submissions} submissions, {self.files} files: {self.scored} scored, {self.cached} from the cache{bad} [{t}]"


# --- evaluation ---------------------------------------------------------------------------------


def evaluate(
    submissions_root: Path,
    public_root: Path,
    private_root: Path,
    tasks: Sequence[str],
    results_root: Path,
    params: EvaluateParams,
) -> EvaluationReport:
    """Score what is new, reuse the cache for the rest, and write the results atomically."""
    clock = time.perf_counter()
    seconds: dict[str, float] = {}
    infos = load_tasks(public_root, private_root, tasks)
    version = scorer_version()
    submissions, invalid = discover(submissions_root)
    withdrawn = excluded(submissions_root)  # organisers' decisions: such a submission leaves the board
    submissions = [s for s in submissions if s.submission not in withdrawn]
    files, ignored = _files_to_score(submissions, infos)
    results_root = Path(results_root)
    cache_path = results_root / SCORE_CACHE_DIR / CACHE_FILE
    cache = _read_cache(cache_path, version, infos)
    kept_details = {
        kind: _read_cache(results_root / SCORE_CACHE_DIR / f"{kind}.parquet", version, infos, _detail_schema(kind))
        for kind in DETAIL_SCHEMAS
    }
    # a file is cached when its scores and its details are (every file has a confusion matrix)
    cached_keys = _keys(cache) & _keys(kept_details["confusion"])
    todo: dict[tuple[str, str], FileToScore] = {}
    for f in files:
        if (f.task, f.sha256) not in cached_keys:
            todo.setdefault((f.task, f.sha256), f)
    seconds["discover"] = time.perf_counter() - clock

    clock = time.perf_counter()
    corrupt = _verify([f for f in files if (f.task, f.sha256) in todo])  # every copy of new content
    if corrupt:
        bad_subs = {f.submission.submission for f in corrupt}
        invalid += [
            {
                "submission": f.submission.submission,
                "problem": f"{f.name}: content differs from the sha256 in {SUBMISSION_META}",
            }
            for f in corrupt
        ]
        files = [f for f in files if f.submission.submission not in bad_subs]
        todo = {k: f for k, f in todo.items() if f.submission.submission not in bad_subs}
        submissions = [s for s in submissions if s.submission not in bad_subs]
    seconds["verify"] = time.perf_counter() - clock

    clock = time.perf_counter()
    fresh, fresh_details = score_files(list(todo.values()), infos, version, params)
    seconds["score"] = time.perf_counter() - clock

    clock = time.perf_counter()
    live = {(f.task, f.sha256) for f in files}
    cache = cache.filter(pa.array([k not in todo for k in _key_list(cache)], pa.bool_()))
    merged = pa.concat_tables([cache, fresh]) if fresh.num_rows else cache
    keep = [(t, s) in live for t, s in zip(merged.column("task").to_pylist(), merged.column("file_sha256").to_pylist())]
    merged = _sorted(merged.filter(pa.array(keep, pa.bool_())), ["task", "file_sha256", "split", "metric"])
    scores = _scores_table(files, merged, infos)
    results_root.mkdir(parents=True, exist_ok=True)
    _write_parquet_atomic(merged, cache_path)
    _write_parquet_atomic(scores, results_root / SCORES)
    for kind, output in DETAIL_OUTPUTS.items():
        path = results_root / SCORE_CACHE_DIR / f"{kind}.parquet"
        schema = _detail_schema(kind)
        kept = kept_details[kind]
        kept = kept.filter(pa.array([k not in todo for k in _key_list(kept)], pa.bool_()))
        both = pa.concat_tables([kept, fresh_details[kind]]) if fresh_details[kind].num_rows else kept
        mask = [(t, h) in live for t, h in zip(both.column("task").to_pylist(), both.column("file_sha256").to_pylist())]
        both = _sorted(both.filter(pa.array(mask, pa.bool_())), [k for k in schema.names if k not in ("n", "tp", "fp")])
        _write_parquet_atomic(both, path)
        _write_parquet_atomic(both.drop_columns(["labels_sha256", "scorer_version"]), results_root / output)
    _write_parquet_atomic(groups_table(infos, params), results_root / BOOTSTRAP_GROUPS)
    _write_database(results_root / SCORES_DB, scores, submissions, infos, rejected_counts(submissions_root))
    report = EvaluationReport(
        len(submissions),
        len(files),
        len(todo),
        len({(f.task, f.sha256) for f in files}) - len(todo),
        invalid,
        ignored,
        version,
        seconds,
    )
    write_json(
        results_root / EVALUATION_REPORT,
        {
            "scorer_version": version,
            "tasks": {
                t: {
                    "type": i.task_type.value,
                    "track": i.track,
                    "primary_metric": i.primary_metric,
                    "title": i.title,
                    "labels_sha256": i.labels_sha256,
                }
                for t, i in infos.items()
            },
            "task_order": list(infos),
            "unreleased": unreleased_tasks(public_root, private_root, tasks),
            "submissions": len(submissions),
            "files": len(files),
            "rejected": rejected_counts(submissions_root),
            "withdrawn": dict(sorted(withdrawn.items())),
            "not_scored": sorted(invalid, key=lambda d: (d["submission"], d["problem"])),
            "ignored_files": ignored,
        },
    )
    seconds["write"] = time.perf_counter() - clock
    return report


def _files_to_score(
    submissions: list[StoredSubmission], infos: dict[str, TaskInfo]
) -> tuple[list[FileToScore], list[dict]]:
    files, ignored = [], []
    for s in submissions:
        for name in sorted(s.record.files):
            task = name.rsplit(".", 1)[0]
            if task in infos:
                scored = canonical_name(task)
                files.append(FileToScore(s, task, name, s.folder / scored, s.record.canonical[scored]))
            else:
                ignored.append({"submission": s.submission, "file": name, "why": "not a task of the challenge"})
    return files, ignored


def _key_list(table: pa.Table) -> list[tuple[str, str]]:
    return list(zip(table.column("task").to_pylist(), table.column("file_sha256").to_pylist()))


def _keys(table: pa.Table) -> set[tuple[str, str]]:
    return set(_key_list(table))


def _verify(files) -> list[FileToScore]:
    """Files about to be scored for the first time must still be what was submitted and validated:
    the canonical twin that is read, and the file as sent beside it."""
    return [
        f
        for f in files
        if sha256_file(f.path) != f.sha256
        or sha256_file(f.submission.folder / f.name) != f.submission.record.files[f.name]
    ]


def _read_cache(path: Path, version: str, infos: dict[str, TaskInfo], schema: pa.Schema = CACHE_SCHEMA) -> pa.Table:
    if not path.is_file():
        return schema.empty_table()
    try:
        table = pq.read_table(path)
        if table.schema != schema:
            return schema.empty_table()
    except (pa.ArrowInvalid, OSError):
        return schema.empty_table()  # a damaged cache costs a rescore, nothing else
    current = {(t, i.labels_sha256) for t, i in infos.items()}
    keep = [
        v == version and (t, labels) in current
        for t, labels, v in zip(
            table.column("task").to_pylist(),
            table.column("labels_sha256").to_pylist(),
            table.column("scorer_version").to_pylist(),
        )
    ]
    return table.filter(pa.array(keep, pa.bool_()))


def connect(params: EvaluateParams, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(database)
    if params.threads:
        con.execute(f"SET threads = {int(params.threads)}")
    con.execute(f"SET memory_limit = '{_sql_text(params.memory_limit)}'")
    con.execute("SET preserve_insertion_order = false")
    return con


def score_files(
    files: list[FileToScore], infos: dict[str, TaskInfo], version: str, params: EvaluateParams
) -> tuple[pa.Table, dict[str, pa.Table]]:
    """Run the metric SQL once per task over all of that task's files: the scores (rows follow
    CACHE_SCHEMA) and each file's details (DETAIL_SCHEMAS, with the cache's key columns).

    The submitted rows are scanned and joined to the hidden labels once per task (`judged`, a
    temporary table); every metric and detail query reads that table."""
    if not files:
        return CACHE_SCHEMA.empty_table(), {k: _detail_schema(k).empty_table() for k in DETAIL_SCHEMAS}
    con = connect(params)
    out: list[pa.Table] = []
    details: dict[str, list[pa.Table]] = {k: [] for k in DETAIL_SCHEMAS}
    try:
        for task in sorted({f.task for f in files}):
            info = infos[task]
            task_files = sorted((f for f in files if f.task == task), key=lambda f: f.sha256)
            _load_hidden_labels(con, info)
            layouts = [_layout(f.path) for f in task_files]
            table = pa.table(
                {
                    "file_id": pa.array(range(len(task_files)), pa.int32()),
                    "path": [str(f.path) for f in task_files],
                    "has_score": [_has_score(layout) for layout in layouts],
                }
            )
            con.register("file_list", table)
            con.execute("CREATE OR REPLACE TEMP TABLE scored_files AS SELECT file_id, path, has_score FROM file_list")
            con.unregister("file_list")
            con.execute(f"CREATE OR REPLACE TEMP VIEW predictions AS {_predictions_sql(info, task_files, layouts)}")
            con.execute(f"CREATE OR REPLACE TEMP TABLE judged AS {(SQL_DIR / JUDGED_SQL).read_text(encoding='utf-8')}")
            metrics = run_metrics(con, info.task_type, judged_table=True)
            shas = [f.sha256 for f in task_files]

            def keyed(t: pa.Table, schema: pa.Schema) -> pa.Table:
                n = t.num_rows
                columns = {
                    "task": pa.array([task] * n, pa.string()),
                    "file_sha256": pa.array([shas[i] for i in t.column("file_id").to_pylist()], pa.string()),
                    "labels_sha256": pa.array([info.labels_sha256] * n, pa.string()),
                    "scorer_version": pa.array([version] * n, pa.string()),
                }
                return pa.table(columns | {f.name: t.column(f.name).cast(f.type) for f in schema})

            out.append(
                keyed(metrics, pa.schema([("split", pa.string()), ("metric", pa.string()), ("value", pa.float64())]))
            )
            for kind, t in run_details(con, info.task_type).items():
                details[kind].append(keyed(t, DETAIL_SCHEMAS[kind]))
            con.execute("DROP TABLE judged")
    finally:
        con.close()
    return (
        pa.concat_tables(out).cast(CACHE_SCHEMA),
        {k: pa.concat_tables(v).cast(_detail_schema(k)) for k, v in details.items()},
    )


def _detail_schema(kind: str) -> pa.Schema:
    return pa.schema([(k, pa.string()) for k in DETAIL_KEYS] + list(DETAIL_SCHEMAS[kind]))


def _metric_selects(task_type: TaskType, with_scores: bool) -> list[str]:
    counts = (SQL_DIR / COUNTS_SQL[task_type]).read_text(encoding="utf-8")
    selects = [
        f"SELECT file_id, split, '{m.name}' AS metric, CAST(({m.sql}) AS DOUBLE) AS value "
        f"FROM class_counts GROUP BY file_id, split"
        for m in count_metrics(task_type)
    ]
    query = f"WITH class_counts AS MATERIALIZED (\n{counts}\n)\n" + "\nUNION ALL\n".join(selects)
    parts = [f"SELECT * FROM (\n{query}\n)"]
    for m in metrics_of(task_type):
        if m.sql is None and m.sql_file is not None and (with_scores or not m.needs_score):
            parts.append(f"SELECT * FROM (\n{(SQL_DIR / m.sql_file).read_text(encoding='utf-8')}\n)")
    return parts


def run_metrics(con: duckdb.DuckDBPyConnection, task_type: TaskType, judged_table: bool = False) -> pa.Table:
    """Every registry metric of a task type over the `hidden_labels`, `predictions` and
    `scored_files` relations already defined on `con` (and `judged`, when `judged_table`);
    rows (file_id, split, metric, value).

    One query: the join of predictions to labels (`judged`) is read by every metric, so the
    submitted files are scanned once per task."""
    with_scores = con.execute("SELECT coalesce(bool_or(has_score), false) FROM scored_files").fetchall()[0][0]
    body = "\nUNION ALL\n".join(_metric_selects(TaskType(task_type), with_scores))
    if judged_table:
        return con.sql(body).to_arrow_table()
    judged = (SQL_DIR / JUDGED_SQL).read_text(encoding="utf-8")
    return con.sql(f"WITH judged AS MATERIALIZED (\n{judged}\n)\n{body}").to_arrow_table()


def run_details(con: duckdb.DuckDBPyConnection, task_type: TaskType) -> dict[str, pa.Table]:
    """What the board needs of the files' rows, from the `judged` table on `con`: the bootstrap's
    counts per group, the confusion matrix and (matching files with a score) the PR curve; the
    public and private parts only."""
    task_type = TaskType(task_type)
    out = {
        "bootstrap_counts": (SQL_DIR / BOOTSTRAP_SQL[task_type]).read_text(encoding="utf-8"),
        "confusion": (SQL_DIR / CONFUSION_SQL).read_text(encoding="utf-8"),
    }
    if task_type is TaskType.matching:
        out["pr_curves"] = (SQL_DIR / PR_CURVE_SQL).read_text(encoding="utf-8")
    tables = {k: con.sql(q).to_arrow_table() for k, q in out.items()}
    if "pr_curves" not in tables:
        empty = {"file_id": pa.array([], pa.int32())} | {
            f.name: pa.array([], f.type) for f in DETAIL_SCHEMAS["pr_curves"]
        }
        tables["pr_curves"] = pa.table(empty)
    return tables


def _load_hidden_labels(con: duckdb.DuckDBPyConnection, info: TaskInfo) -> None:
    """The hidden labels as `hidden_labels(key, label, split, grp)`: grp is the row's resampling
    group, a test row (classification) or a connected set of pairs that share a record (matching)."""
    label = "CAST(label AS VARCHAR)" if info.task_type is TaskType.classification else "CAST(label AS INTEGER)"
    source = f"read_parquet('{_sql_text(str(info.labels))}')"
    if info.task_type is TaskType.matching:
        if info.pairs is None:
            raise ValueError(f"matching task {info.task} has no test pairs file")
        con.register("pair_groups", pair_groups(info.pairs))
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE hidden_labels AS "
            f"SELECT CAST(l.{info.key} AS VARCHAR) AS key, {label} AS label, CAST(l.split AS VARCHAR) AS split, "
            # a pair missing from test_pairs (never in a sound release) still scores, as its own group
            f"CAST(coalesce(g.grp, (SELECT max(grp) FROM pair_groups) + row_number() OVER (ORDER BY l.{info.key})) "
            f"AS INTEGER) AS grp FROM {source} AS l LEFT JOIN pair_groups AS g ON g.key = CAST(l.{info.key} AS VARCHAR)"
        )
        con.unregister("pair_groups")
    else:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE hidden_labels AS "
            f"SELECT CAST({info.key} AS VARCHAR) AS key, {label} AS label, CAST(split AS VARCHAR) AS split, "
            f"CAST(row_number() OVER (ORDER BY CAST({info.key} AS VARCHAR)) - 1 AS INTEGER) AS grp FROM {source}"
        )


def pair_groups(test_pairs: Path) -> pa.Table:
    """(key, grp) for every test pair: pairs that share a left or a right record, directly or
    through others, form one group (numbered by their smallest pair id, in sorted order)."""
    t = pq.read_table(test_pairs, columns=[PAIR_ID, LEFT_ID, RIGHT_ID])
    pairs = [str(v) for v in t.column(PAIR_ID).to_pylist()]
    lefts = ["l" + str(v) for v in t.column(LEFT_ID).to_pylist()]
    rights = ["r" + str(v) for v in t.column(RIGHT_ID).to_pylist()]
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(lefts, rights):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    first: dict[str, str] = {}
    for p, a in sorted(zip(pairs, lefts)):
        first.setdefault(find(a), p)
    number = {root: i for i, root in enumerate(sorted(first, key=lambda r: first[r]))}
    return pa.table(
        {"key": pa.array(pairs, pa.string()), "grp": pa.array([number[find(a)] for a in lefts], pa.int32())}
    )


GROUPS_SQL = (
    "SELECT split, grp, CAST(label AS VARCHAR) AS truth, CAST(count(*) AS INTEGER) AS n "
    "FROM hidden_labels GROUP BY ALL ORDER BY split, grp, truth"
)


def groups_table(infos: dict[str, TaskInfo], params: EvaluateParams) -> pa.Table:
    """Every task's resampling groups and their true classes: (task, split, grp, truth, n)."""
    con = connect(params)
    out = []
    try:
        for task, info in infos.items():
            _load_hidden_labels(con, info)
            t = con.sql(GROUPS_SQL).to_arrow_table()
            out.append(
                pa.table(
                    {"task": pa.array([task] * t.num_rows, pa.string())} | {c: t.column(c) for c in t.column_names}
                )
            )
    finally:
        con.close()
    return pa.concat_tables(out).cast(GROUPS_SCHEMA) if out else GROUPS_SCHEMA.empty_table()


def _layout(path: Path) -> tuple[tuple[str, str], ...]:
    """The (name, type) of each column of a canonical twin, in file order, from its footer."""
    return tuple((field.name, str(field.type)) for field in pq.read_schema(path))


def _has_score(layout: tuple[tuple[str, str], ...]) -> bool:
    return any(name == SCORE for name, _ in layout)


def _predictions_sql(info: TaskInfo, files: list[FileToScore], layouts: list[tuple[tuple[str, str], ...]]) -> str:
    """One relation (file_id, key, pred, score) over every file of a task.

    Every file is a canonical twin (typed Parquet written by submit()), read by groups of one
    layout, without union_by_name, which would read every file's footer before the scan starts."""
    if any(f.path.suffix != ".parquet" for f in files):
        raise ValueError("only canonical Parquet twins are scored")
    pred = "CAST(s.label AS VARCHAR)" if info.task_type is TaskType.classification else "CAST(s.label AS INTEGER)"
    groups: dict[tuple[tuple[str, str], ...], list[FileToScore]] = {}
    for f, layout in zip(files, layouts):
        groups.setdefault(layout, []).append(f)
    selects = []
    for layout, group in sorted(groups.items()):
        score = "CAST(s.score AS DOUBLE)" if _has_score(layout) else "CAST(NULL AS DOUBLE)"
        source = f"read_parquet({_sql_list(str(f.path) for f in group)}, filename = true)"
        selects.append(
            f"SELECT m.file_id, CAST(s.{info.key} AS VARCHAR) AS key, {pred} AS pred, {score} AS score "
            f"FROM {source} AS s JOIN scored_files AS m ON m.path = s.filename"
        )
    return "\nUNION ALL\n".join(selects)


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


def _sql_list(values) -> str:
    return "[" + ", ".join(f"'{_sql_text(v)}'" for v in values) + "]"


# --- outputs -----------------------------------------------------------------------------------


def _sorted(table: pa.Table, keys: list[str]) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in keys])


def _scores_table(files: list[FileToScore], cache: pa.Table, infos: dict[str, TaskInfo]) -> pa.Table:
    """Every file's cached scores beside its submission: one vectorized join, not a row loop."""
    records = [f.submission.record for f in files]
    columns = {
        "team": [r.team for r in records],
        "submission_id": [r.submission_id for r in records],
        "submission": [f.submission.submission for f in files],
        "name": [r.name for r in records],
        "baseline": [r.baseline for r in records],
        "submitted_at": [r.submitted_at for r in records],
        "task": [f.task for f in files],
        "track": [infos[f.task].track for f in files],
        "primary_metric": [infos[f.task].primary_metric for f in files],
        "file": [f.name for f in files],
        "file_sha256": [f.sha256 for f in files],
    }
    file_table = pa.table({k: pa.array(v, pa.bool_() if k == "baseline" else pa.string()) for k, v in columns.items()})
    joined = file_table.join(cache, ["task", "file_sha256"], join_type="inner")
    primary = pc.equal(joined.column("metric"), joined.column("primary_metric"))
    table = joined.append_column("primary", primary).select(SCORES_SCHEMA.names).cast(SCORES_SCHEMA)
    return _sorted(table, ["team", "submission", "task", "split", "metric"])


def _write_parquet_atomic(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write_parquet(table, tmp)
    os.replace(tmp, path)


def _write_database(
    path: Path,
    scores: pa.Table,
    submissions: list[StoredSubmission],
    infos: dict[str, TaskInfo],
    rejected: dict[str, int],
) -> None:
    """results/scores.duckdb: the scores with their submissions and tasks, for people to query."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    subs = pa.table(
        {
            "submission": [s.submission for s in submissions],
            "team": [s.record.team for s in submissions],
            "submission_id": [s.record.submission_id for s in submissions],
            "name": [s.record.name for s in submissions],
            "description": [s.record.description for s in submissions],
            "baseline": pa.array([s.record.baseline for s in submissions], pa.bool_()),
            "submitted_at": [s.record.submitted_at for s in submissions],
            "tasks": pa.array([list(s.record.tasks) for s in submissions], pa.list_(pa.string())),
        }
    )
    tasks = pa.table(
        {
            "task": list(infos),
            "type": [i.task_type.value for i in infos.values()],
            "track": [i.track for i in infos.values()],
            "primary_metric": [i.primary_metric for i in infos.values()],
            "title": [i.title for i in infos.values()],
        }
    )
    rejected_t = pa.table({"team": list(rejected), "rejected": pa.array(list(rejected.values()), pa.int64())})
    con = duckdb.connect(str(tmp))
    try:
        for name, table, comment in (
            ("scores", scores, "one row per submission x task x split (public, private, all) x metric"),
            ("submissions", subs, "every scored submission"),
            ("tasks", tasks, "the tasks of the challenge"),
            ("rejected", rejected_t, "rejected submissions per team (never scored)"),
        ):
            con.register("incoming", table)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM incoming")
            con.unregister("incoming")
            con.execute(f"COMMENT ON TABLE {name} IS '{_sql_text(comment)}'")
        con.execute('CREATE VIEW primary_scores AS SELECT * FROM scores WHERE "primary"')
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, path)
    Path(f"{tmp}.wal").unlink(missing_ok=True)


def open_scores(results_root: Path = Path("results")) -> duckdb.DuckDBPyConnection:
    """A read-only connection to results/scores.duckdb (for notebooks and scripts)."""
    return duckdb.connect(str(Path(results_root) / SCORES_DB), read_only=True)
