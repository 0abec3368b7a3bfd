-- Every submitted row beside its hidden truth: the one join that all metric queries of a task
-- read, so the submitted files are scanned and joined once per task, not once per metric.
--
-- Reads  hidden_labels(key, label, split, grp)     split public | private; grp: the row's resampling group
--        predictions(file_id, key, pred, score)    every submitted row, with its file
-- Writes judged(file_id, split, grp, truth, pred, score)
--
-- Test rows without a prediction have no row here; every metric counts them from
-- hidden_labels (a missed row is wrong, a missed true match is never retrieved).
SELECT p.file_id, h.split, h.grp, h.label AS truth, p.pred, p.score
FROM predictions AS p
JOIN hidden_labels AS h ON p.key = h.key
