-- What the bootstrap needs of every scored file, without its rows: the rows that move a count
-- away from "every row right", that is the wrong and the missed rows, each with its resampling
-- group (one test row per group). With the groups' true classes (bootstrap_groups) they give
-- every per-class count of any resample.
--
-- Reads  hidden_labels(key, label, split, grp), judged(file_id, split, grp, truth, pred), scored_files(file_id)
-- Writes (file_id, split, grp, truth, pred, n)     pred NULL: no prediction for that row
SELECT file_id, split, grp, truth, pred, CAST(count(*) AS INTEGER) AS n
FROM judged
WHERE pred IS DISTINCT FROM truth
GROUP BY ALL
UNION ALL
SELECT f.file_id, h.split, h.grp, h.label, CAST(NULL AS VARCHAR), CAST(count(*) AS INTEGER)
FROM scored_files AS f
CROSS JOIN hidden_labels AS h
ANTI JOIN judged AS j ON j.file_id = f.file_id AND j.grp = h.grp
GROUP BY ALL
