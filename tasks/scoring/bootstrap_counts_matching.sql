-- What the bootstrap needs of every scored file, without its rows: per resampling group (a
-- connected set of pairs that share records), its predicted matches, true and false. With the
-- groups' true matches (bootstrap_groups) they give tp, fp and fn of any resample of the groups.
--
-- Reads  judged(file_id, split, grp, truth, pred)   pred 0/1
-- Writes (file_id, split, grp, truth, pred, n)      truth '0' | '1', pred '1'
SELECT file_id, split, grp, CAST(truth AS VARCHAR) AS truth, '1' AS pred, CAST(count(*) AS INTEGER) AS n
FROM judged
WHERE pred = 1
GROUP BY ALL
