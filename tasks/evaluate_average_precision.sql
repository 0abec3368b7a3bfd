-- Average precision of the `score` column of every scored file that has one, on each part of
-- the test set and on all of it, as sklearn's average_precision_score:
--   AP = sum over score levels s (highest first) of (R(s) - R(s_prev)) * P(s)
--      = (1 / positives) * sum over true matches i of TP(s_i) / N(s_i)
-- where N(s) and TP(s) count the rows and the true matches scored >= s, equal scores forming
-- one level: a RANGE frame over a descending order includes every peer of the current row.
--
-- Reads  hidden_labels(key, label, split)           label 0/1, split public | private
--        predictions(file_id, key, pred, score)     score in [0, 1] or NULL
--        scored_files(file_id, has_score)
-- Writes (file_id, split, metric, value)
--
-- One sort per file: the running counts of every part come from the same ordered window
-- (conditional sums), not from one sort per part. A true match without a score is never
-- retrieved (recall stays below 1); no true match in a part gives AP 0, as sklearn. The
-- counts are exact integers and the terms are summed as exact DECIMAL, so the result does
-- not depend on the thread schedule.
WITH scored AS (
    SELECT p.file_id, h.split = 'public' AS is_public, h.label AS truth, p.score
    FROM predictions AS p
    JOIN hidden_labels AS h ON p.key = h.key
    WHERE p.score IS NOT NULL
),
running AS (                                  -- N(s) and TP(s) at each row: overall and per part
    SELECT file_id, is_public, truth,
           count(*) OVER w AS n_all,
           sum(truth) OVER w AS tp_all,
           sum(CAST(is_public AS INTEGER)) OVER w AS n_public,
           sum(CASE WHEN is_public THEN truth ELSE 0 END) OVER w AS tp_public
    FROM scored
    WINDOW w AS (PARTITION BY file_id ORDER BY score DESC RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
found AS (                                    -- TP(s) / N(s) at each true match
    SELECT file_id,
           CASE WHEN is_public THEN 'public' ELSE 'private' END AS split,
           CASE WHEN is_public THEN tp_public / n_public
                ELSE (tp_all - tp_public) / (n_all - n_public) END AS precision_part,
           tp_all / n_all AS precision_all
    FROM running
    WHERE truth = 1
),
sums AS (
    SELECT file_id, split, sum(CAST(precision_part AS DECIMAL(38, 18))) AS weighted FROM found GROUP BY file_id, split
    UNION ALL
    SELECT file_id, 'all', sum(CAST(precision_all AS DECIMAL(38, 18))) FROM found GROUP BY file_id
),
positives AS (
    SELECT split, count(*) FILTER (WHERE label = 1) AS pos FROM hidden_labels GROUP BY split
    UNION ALL
    SELECT 'all', count(*) FILTER (WHERE label = 1) FROM hidden_labels
)
SELECT f.file_id, q.split, 'average_precision' AS metric,
       CASE WHEN q.pos > 0 THEN coalesce(CAST(s.weighted AS DOUBLE), 0.0) / q.pos ELSE 0.0 END AS value
FROM scored_files AS f
CROSS JOIN positives AS q
LEFT JOIN sums AS s ON s.file_id = f.file_id AND s.split = q.split
WHERE f.has_score
