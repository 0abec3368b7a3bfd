-- Accuracy and macro-F1 of every scored file, on each part of the test set and on all of it.
--
-- Reads  hidden_labels(key, label, split)         the task's hidden test labels
--        judged(file_id, split, truth, pred)      every submitted row beside its truth
--        scored_files(file_id)                    the files being scored
-- Writes (file_id, split, metric, value)
--
-- A test row without a prediction counts as wrong: a false negative of its class, a false
-- positive of none. Macro-F1 averages F1 over the classes that occur in the truth or in the
-- predictions of that part (sklearn's default label set). Per-class terms are summed as
-- DECIMAL, which is exact, so the result does not depend on how threads split the work.
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
part_size AS (
    SELECT split, sum(n) AS n FROM support GROUP BY split
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
),
per_class AS (
    SELECT c.file_id, c.split,
           coalesce(h.n, 0) AS tp,
           -- F1 = 2 TP / (2 TP + FP + FN) = 2 TP / (predicted + support)
           2 * coalesce(h.n, 0) / (coalesce(p.n, 0) + coalesce(s.n, 0)) AS f1
    FROM classes AS c
    LEFT JOIN hits AS h ON h.file_id = c.file_id AND h.split = c.split AND h.class = c.class
    LEFT JOIN predicted AS p ON p.file_id = c.file_id AND p.split = c.split AND p.class = c.class
    LEFT JOIN support AS s ON s.split = c.split AND s.class = c.class
),
per_file AS (
    SELECT file_id, split,
           sum(tp) AS correct,
           sum(CAST(f1 AS DECIMAL(38, 18))) AS f1_sum,
           count(*) AS n_classes
    FROM per_class
    GROUP BY file_id, split
)
SELECT f.file_id, f.split, 'accuracy' AS metric, CAST(f.correct AS DOUBLE) / z.n AS value
FROM per_file AS f JOIN part_size AS z ON z.split = f.split
UNION ALL
SELECT file_id, split, 'macro_f1', CAST(f1_sum AS DOUBLE) / n_classes
FROM per_file
