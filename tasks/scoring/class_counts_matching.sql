-- Confusion counts of the positive class (a match) of every scored file, on each part of the
-- test set and on all of it: the rows the registry's count metrics (tasks/core/metrics.py)
-- aggregate, one per file and part.
--
-- Reads  hidden_labels(key, label, split)         label 0/1
--        judged(file_id, split, truth, pred)      every submitted row beside its truth, pred 0/1
--        scored_files(file_id)                    the files being scored
-- Writes class_counts(file_id, split, class, tp, fp, fn)
--
-- A test pair without a prediction counts as predicted 0 (a missed true match is a false negative).
WITH counts_by_part AS MATERIALIZED (          -- only predicted matches count: the filter
    SELECT file_id, split,                      -- reaches the file scan, so fewer rows are joined
           count(*) FILTER (WHERE truth = 1) AS tp,
           count(*) FILTER (WHERE truth = 0) AS fp
    FROM judged
    WHERE pred = 1
    GROUP BY ALL
),
counts AS (
    SELECT file_id, split, tp, fp FROM counts_by_part
    UNION ALL
    SELECT file_id, 'all', sum(tp), sum(fp) FROM counts_by_part GROUP BY file_id
),
positives AS (                                -- true matches per part
    SELECT split, count(*) FILTER (WHERE label = 1) AS pos FROM hidden_labels GROUP BY split
    UNION ALL
    SELECT 'all', count(*) FILTER (WHERE label = 1) FROM hidden_labels
)
SELECT f.file_id, q.split, '1' AS class,
       coalesce(c.tp, 0) AS tp, coalesce(c.fp, 0) AS fp, q.pos - coalesce(c.tp, 0) AS fn
FROM scored_files AS f
CROSS JOIN positives AS q
LEFT JOIN counts AS c ON c.file_id = f.file_id AND c.split = q.split
