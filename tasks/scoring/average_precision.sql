-- Average precision of the `score` column of every scored file that has one, on each part of
-- the test set and on all of it, as sklearn's average_precision_score:
--   AP = sum over score levels s (highest first) of (R(s) - R(s_prev)) * P(s)
--      = (1 / positives) * sum over true matches i of TP(s_i) / N(s_i)
-- where N(s) and TP(s) count the rows and the true matches scored >= s, equal scores forming
-- one level.
--
-- Reads  hidden_labels(key, label, split)               label 0/1, split public | private
--        judged(file_id, split, truth, pred, score)     score in [0, 1] or NULL
--        scored_files(file_id, has_score)
-- Writes (file_id, split, metric, value)
--
-- The counts come from rank() (1 + rows scored strictly lower), the cheapest window DuckDB
-- has: N(s) = rows - rank + 1 and TP(s) = true matches - (rank among true matches) + 1,
-- in the file and in the part. Running sums over the window would be exact too, but cost
-- several times more (a segment tree per aggregate). A true match without a score is never
-- retrieved (recall stays below 1); no true match in a part gives AP 0, as sklearn. The
-- counts are exact integers and the terms are summed as exact DECIMAL, so the result does
-- not depend on the thread schedule.
WITH scored AS MATERIALIZED (
    SELECT file_id, split = 'public' AS is_public, truth, score
    FROM judged
    WHERE score IS NOT NULL
),
sizes AS (                                    -- scored rows and scored true matches per file and part
    SELECT file_id, is_public, count(*) AS n_part, count(*) FILTER (WHERE truth = 1) AS tp_part
    FROM scored
    GROUP BY ALL
),
totals AS (
    SELECT file_id, is_public, n_part, tp_part,
           sum(n_part) OVER (PARTITION BY file_id) AS n_all,
           sum(tp_part) OVER (PARTITION BY file_id) AS tp_all
    FROM sizes
),
ranked AS (                                   -- 1 + rows scored lower, in the file and in the part
    SELECT file_id, is_public, truth, score,
           rank() OVER (PARTITION BY file_id ORDER BY score) AS rank_all,
           rank() OVER (PARTITION BY file_id, is_public ORDER BY score) AS rank_part
    FROM scored
),
found AS (                                    -- ... and 1 + true matches scored lower
    SELECT file_id, is_public, rank_all, rank_part,
           rank() OVER (PARTITION BY file_id ORDER BY score) AS tp_rank_all,
           rank() OVER (PARTITION BY file_id, is_public ORDER BY score) AS tp_rank_part
    FROM ranked
    WHERE truth = 1
),
terms AS (                                    -- TP(s) / N(s) at each true match
    SELECT f.file_id, f.is_public,
           (t.tp_part - f.tp_rank_part + 1) / (t.n_part - f.rank_part + 1) AS precision_part,
           (t.tp_all - f.tp_rank_all + 1) / (t.n_all - f.rank_all + 1) AS precision_all
    FROM found AS f
    JOIN totals AS t ON t.file_id = f.file_id AND t.is_public = f.is_public
),
sums AS (
    SELECT file_id, CASE WHEN is_public THEN 'public' ELSE 'private' END AS split,
           sum(CAST(precision_part AS DECIMAL(38, 18))) AS weighted
    FROM terms GROUP BY ALL
    UNION ALL
    SELECT file_id, 'all', sum(CAST(precision_all AS DECIMAL(38, 18))) FROM terms GROUP BY file_id
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
