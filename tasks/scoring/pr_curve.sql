-- The precision-recall curve of the `score` column of every matching file that has one, per
-- part of the test set, at thresholds 0.00, 0.01, ..., 1.00 (scores lie in [0, 1]): the true
-- and false matches scored at or above each threshold that some score reaches.
--
-- Reads  judged(file_id, split, truth, score)
-- Writes (file_id, split, threshold, tp, fp)
WITH levels AS (
    SELECT file_id, split, floor(score * 100) / 100 AS threshold,
           count(*) FILTER (WHERE truth = 1) AS tp, count(*) FILTER (WHERE truth = 0) AS fp
    FROM judged
    WHERE score IS NOT NULL
    GROUP BY ALL
)
SELECT file_id, split, CAST(threshold AS DOUBLE) AS threshold,
       CAST(sum(tp) OVER w AS INTEGER) AS tp, CAST(sum(fp) OVER w AS INTEGER) AS fp
FROM levels
WINDOW w AS (PARTITION BY file_id, split ORDER BY threshold DESC ROWS UNBOUNDED PRECEDING)
