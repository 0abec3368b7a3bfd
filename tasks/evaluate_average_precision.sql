-- Average precision of the `score` column of every scored file that has one, on each part of
-- the test set and on all of it: AP = sum over score levels k (highest first) of
-- (R_k - R_{k-1}) * P_k, as sklearn's average_precision_score, ties grouped into one level.
--
-- Reads  hidden_labels(key, label, split)           label 0/1
--        predictions(file_id, key, pred, score)     score in [0, 1] or NULL
--        scored_files(file_id, has_score)
-- Writes (file_id, split, metric, value)
--
-- A true match without a score is never retrieved: recall stays below 1 and AP drops. No true
-- match in a part gives AP 0 (sklearn's value too). Terms are summed as exact DECIMAL.
WITH by_score AS MATERIALIZED (               -- one row per distinct score: its matches and rows
    SELECT p.file_id, h.split, p.score,
           count(*) FILTER (WHERE h.label = 1) AS pos, count(*) AS n
    FROM predictions AS p
    JOIN hidden_labels AS h ON p.key = h.key
    WHERE p.score IS NOT NULL
    GROUP BY ALL
),
levels AS (
    SELECT file_id, split, score, pos, n FROM by_score
    UNION ALL
    SELECT file_id, 'all', score, sum(pos), sum(n) FROM by_score GROUP BY file_id, score
),
curve AS (                                    -- precision when everything scored >= this level is retrieved
    SELECT file_id, split, pos,
           sum(pos) OVER w / sum(n) OVER w AS precision
    FROM levels
    WINDOW w AS (PARTITION BY file_id, split ORDER BY score DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
sums AS (
    SELECT file_id, split, sum(CAST(pos * precision AS DECIMAL(38, 18))) AS weighted
    FROM curve
    GROUP BY file_id, split
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
