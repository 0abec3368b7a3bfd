-- The confusion matrix of every scored file per part of the test set, for the teams' own
-- diagnostics: (true, predicted) counts, a test row without a prediction under pred NULL.
--
-- Reads  hidden_labels(key, label, split), judged(file_id, split, truth, pred), scored_files(file_id)
-- Writes (file_id, split, truth, pred, n)          truth and pred as text
WITH cells AS (
    SELECT file_id, split, CAST(truth AS VARCHAR) AS truth, CAST(pred AS VARCHAR) AS pred, count(*) AS n
    FROM judged
    GROUP BY ALL
),
support AS (
    SELECT split, CAST(label AS VARCHAR) AS truth, count(*) AS n FROM hidden_labels GROUP BY ALL
),
answered AS (
    SELECT file_id, split, truth, sum(n) AS n FROM cells GROUP BY ALL
)
SELECT file_id, split, truth, pred, CAST(n AS INTEGER) AS n FROM cells
UNION ALL
SELECT f.file_id, s.split, s.truth, CAST(NULL AS VARCHAR), CAST(s.n - coalesce(a.n, 0) AS INTEGER)
FROM scored_files AS f
CROSS JOIN support AS s
LEFT JOIN answered AS a ON a.file_id = f.file_id AND a.split = s.split AND a.truth = s.truth
WHERE s.n > coalesce(a.n, 0)
