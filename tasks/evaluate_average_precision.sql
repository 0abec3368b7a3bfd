-- Average precision of the `score` column of every scored file that has one, on each part of
-- the test set and on all of it, as sklearn's average_precision_score:
--   AP = sum over score levels s (highest first) of (R(s) - R(s_prev)) * P(s)
--      = (1 / positives) * sum over true matches i of TP(s_i) / N(s_i)
-- where N(s) and TP(s) count the rows and the true matches scored >= s: equal scores form one
-- level, which is what cume_dist() over a descending order counts (peers included).
--
-- Reads  hidden_labels(key, label, split)           label 0/1
--        predictions(file_id, key, pred, score)     score in [0, 1] or NULL
--        scored_files(file_id, has_score)
-- Writes (file_id, split, metric, value)
--
-- A true match without a score is never retrieved (recall stays below 1); no true match in a
-- part gives AP 0, as sklearn. cume_dist() * rows is rounded back to the exact count, and the
-- terms are summed as exact DECIMAL, so the result does not depend on the thread schedule.
WITH scored AS (
    SELECT p.file_id, h.split, h.label AS truth, p.score
    FROM predictions AS p
    JOIN hidden_labels AS h ON p.key = h.key
    WHERE p.score IS NOT NULL
),
retrieved AS (                                -- N(s) at each row: in its part, and overall
    SELECT file_id, split, truth, score,
           round(cume_dist() OVER (PARTITION BY file_id, split ORDER BY score DESC) * count(*) OVER (PARTITION BY file_id, split)) AS n_part,
           round(cume_dist() OVER (PARTITION BY file_id ORDER BY score DESC) * count(*) OVER (PARTITION BY file_id)) AS n_all
    FROM scored
),
found AS (                                    -- TP(s) / N(s) at each true match
    SELECT file_id, split,
           round(cume_dist() OVER (PARTITION BY file_id, split ORDER BY score DESC) * count(*) OVER (PARTITION BY file_id, split)) / n_part AS precision_part,
           round(cume_dist() OVER (PARTITION BY file_id ORDER BY score DESC) * count(*) OVER (PARTITION BY file_id)) / n_all AS precision_all
    FROM retrieved
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
