-- Per-class confusion counts of every scored file, on each part of the test set and on all of
-- it: the rows the registry's count metrics (tasks/core/metrics.py) aggregate.
--
-- Reads  hidden_labels(key, label, split)         the task's hidden test labels
--        judged(file_id, split, truth, pred)      every submitted row beside its truth
--        scored_files(file_id)                    the files being scored
-- Writes class_counts(file_id, split, class, tp, fp, fn)
--
-- A test row without a prediction counts as wrong: a false negative of its class, a false
-- positive of none. The classes of a file and part are those in the truth or in the
-- predictions of that part (sklearn's default label set).
WITH pairs_by_part AS MATERIALIZED (          -- (true class, predicted class) counts
    SELECT file_id, split, truth, pred, count(*) AS n
    FROM judged
    GROUP BY ALL
),
pairs AS (
    SELECT file_id, split, truth, pred, n FROM pairs_by_part
    UNION ALL
    SELECT file_id, 'all', truth, pred, sum(n) FROM pairs_by_part GROUP BY file_id, truth, pred
),
support AS (                                  -- true rows per class and part
    SELECT split, label AS class, count(*) AS n FROM hidden_labels GROUP BY split, label
    UNION ALL
    SELECT 'all', label, count(*) FROM hidden_labels GROUP BY label
),
predicted AS (
    SELECT file_id, split, pred AS class, sum(n) AS n FROM pairs WHERE pred IS NOT NULL GROUP BY ALL
),
hits AS (
    SELECT file_id, split, truth AS class, sum(n) AS n FROM pairs WHERE truth = pred GROUP BY ALL
),
classes AS (                                  -- the label set of each file and part
    SELECT f.file_id, s.split, s.class FROM scored_files AS f CROSS JOIN support AS s
    UNION
    SELECT file_id, split, class FROM predicted
)
SELECT c.file_id, c.split, c.class,
       coalesce(h.n, 0) AS tp,
       coalesce(p.n, 0) - coalesce(h.n, 0) AS fp,
       coalesce(s.n, 0) - coalesce(h.n, 0) AS fn
FROM classes AS c
LEFT JOIN hits AS h ON h.file_id = c.file_id AND h.split = c.split AND h.class = c.class
LEFT JOIN predicted AS p ON p.file_id = c.file_id AND p.split = c.split AND p.class = c.class
LEFT JOIN support AS s ON s.split = c.split AND s.class = c.class
