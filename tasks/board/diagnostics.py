"""What each team got wrong, for the submission the board selected for it on each task.

Classification: per-class precision, recall and F1 and the confusion matrix; matching: precision
and recall at the team's own threshold (its 0/1 labels) and, when its file has a `score`, the
precision-recall curve. From the counts the evaluate stage kept (results/confusion.parquet,
results/pr_curves.parquet, results/bootstrap_groups.parquet); no submission file is read.

While the challenge is open only the public part is released; once it is closed, the whole test
set. Every ratio is rounded like the board's scores. Each team's section holds only its own
submission's facts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from tasks.board.ranking import TaskMeta
from tasks.core.schema import BOOTSTRAP_GROUPS, CONFUSION, PR_CURVES, TaskType

PER_CLASS_SQL = """
WITH cells AS (SELECT truth, pred, sum(n) AS n FROM confusion GROUP BY ALL),
classes AS (SELECT truth AS class FROM cells UNION SELECT pred FROM cells WHERE pred IS NOT NULL),
counts AS (
    SELECT c.class,
           coalesce(sum(x.n) FILTER (WHERE x.truth = c.class AND x.pred = c.class), 0) AS tp,
           coalesce(sum(x.n) FILTER (WHERE x.pred = c.class), 0) AS predicted,
           coalesce(sum(x.n) FILTER (WHERE x.truth = c.class), 0) AS support
    FROM classes AS c CROSS JOIN cells AS x
    GROUP BY c.class
)
SELECT class, CAST(support AS INTEGER) AS support, CAST(predicted AS INTEGER) AS predicted,
       CASE WHEN predicted > 0 THEN tp / predicted ELSE 0.0 END AS precision,
       CASE WHEN support > 0 THEN tp / support ELSE 0.0 END AS recall,
       CASE WHEN predicted + support > 0 THEN 2 * tp / (predicted + support) ELSE 0.0 END AS f1
FROM counts ORDER BY class
"""


def team_diagnostics(
    results_root: Path, entries: pa.Table, tasks: list[TaskMeta], closed: bool, decimals: int
) -> dict[str, list[dict]]:
    """team -> one entry per task it has a selected submission for; {} when the counts are absent.

    entries: (team, task, file_sha256), the board's selected submissions (tasks/board/bootstrap.entries_of)."""
    root = Path(results_root)
    if not (root / CONFUSION).is_file():
        return {}
    splits = ["public", "private"] if closed else ["public"]
    confusion = pq.read_table(root / CONFUSION)
    curves = pq.read_table(root / PR_CURVES) if (root / PR_CURVES).is_file() else None
    groups = pq.read_table(root / BOOTSTRAP_GROUPS) if (root / BOOTSTRAP_GROUPS).is_file() else None
    meta = {t.task: t for t in tasks}

    def r(x: float) -> float:
        return round(float(x), decimals)

    out: dict[str, list[dict]] = {}
    con = duckdb.connect()
    try:
        con.register("all_confusion", confusion)
        if curves is not None:
            con.register("all_curves", curves)
        if groups is not None:
            con.register("all_groups", groups)
        split_list = "(" + ", ".join(f"'{s}'" for s in splits) + ")"
        for e in sorted(entries.to_pylist(), key=lambda e: (e["team"], list(meta).index(e["task"]))):
            if e["task"] not in meta or any(d["task"] == e["task"] for d in out.get(e["team"], [])):
                continue
            t = meta[e["task"]]
            key = f"task = '{_q(t.task)}' AND file_sha256 = '{_q(e['file_sha256'])}' AND split IN {split_list}"
            con.execute(f"CREATE OR REPLACE TEMP VIEW confusion AS SELECT * FROM all_confusion WHERE {key}")
            item: dict[str, Any] = {"task": t.task, "type": t.task_type, "parts": " and ".join(splits)}
            if TaskType(t.task_type) is TaskType.classification:
                per_class = con.sql(PER_CLASS_SQL).fetchall()
                item["classes"] = [
                    {
                        "class": c,
                        "support": s,
                        "predicted": p,
                        "precision": r(pr),
                        "recall": r(rc),
                        "f1": r(f1),
                    }
                    for c, s, p, pr, rc, f1 in per_class
                ]
                labels = [c["class"] for c in item["classes"] if c["support"] > 0]
                cells = {
                    (truth, pred): n
                    for truth, pred, n in con.sql(
                        "SELECT truth, coalesce(pred, '(none)'), CAST(sum(n) AS INTEGER) FROM confusion GROUP BY ALL"
                    ).fetchall()
                }
                columns = [c["class"] for c in item["classes"]] + (
                    ["(none)"] if any(p == "(none)" for _, p in cells) else []
                )
                item["matrix"] = {
                    "rows": labels,
                    "columns": columns,
                    "counts": [[cells.get((a, b), 0) for b in columns] for a in labels],
                }
            else:
                tp, fp, fn = con.sql(
                    "SELECT coalesce(sum(n) FILTER (WHERE truth = '1' AND pred = '1'), 0), "
                    "coalesce(sum(n) FILTER (WHERE truth = '0' AND pred = '1'), 0), "
                    "coalesce(sum(n) FILTER (WHERE truth = '1' AND (pred IS NULL OR pred <> '1')), 0) FROM confusion"
                ).fetchall()[0]
                item["at_threshold"] = {
                    "tp": int(tp),
                    "fp": int(fp),
                    "fn": int(fn),
                    "precision": r(tp / (tp + fp)) if tp + fp else 0.0,
                    "recall": r(tp / (tp + fn)) if tp + fn else 0.0,
                }
                item["curve"] = []
                if curves is not None and groups is not None:
                    positives = con.sql(
                        f"SELECT coalesce(sum(n), 0) FROM all_groups WHERE task = '{_q(t.task)}' "
                        f"AND truth = '1' AND split IN {split_list}"
                    ).fetchall()[0][0]
                    points = con.sql(
                        "WITH per_split AS (SELECT split, threshold, tp, fp FROM all_curves WHERE "
                        + key
                        + "), levels AS (SELECT DISTINCT threshold FROM per_split), "
                        "filled AS (SELECT l.threshold, p.split, "
                        "(SELECT q.tp FROM per_split AS q WHERE q.split = p.split AND q.threshold >= l.threshold "
                        " ORDER BY q.threshold LIMIT 1) AS tp, "
                        "(SELECT q.fp FROM per_split AS q WHERE q.split = p.split AND q.threshold >= l.threshold "
                        " ORDER BY q.threshold LIMIT 1) AS fp "
                        "FROM levels AS l CROSS JOIN (SELECT DISTINCT split FROM per_split) AS p) "
                        "SELECT threshold, sum(coalesce(tp, 0)), sum(coalesce(fp, 0)) FROM filled "
                        "GROUP BY threshold ORDER BY threshold DESC"
                    ).fetchall()
                    if positives:
                        item["curve"] = [
                            {
                                "threshold": r(th),
                                "precision": r(a / (a + b)) if a + b else 1.0,
                                "recall": r(a / positives),
                            }
                            for th, a, b in points
                        ]
            out.setdefault(e["team"], []).append(item)
    finally:
        con.close()
    return out


def _q(text: str) -> str:
    return str(text).replace("'", "''")
