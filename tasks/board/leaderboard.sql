-- The board: per task each team's selected submission, per track the mean of the primary
-- metric over the track's tasks (a task a team did not submit counts 0), ranks per track.
--
-- Reads  scores(...)                       results/scores.parquet
--        tasks(task, track, metric, ord)   the challenge's tasks, in the order of params.yaml
--        teams(team, entries, rejected)    accepted and rejected submissions per team
--        settings(policy, closed)          leaderboard.policy, challenge.closed
--        final_picks(team, submission_id)  the teams' final selections (mmtc select)
-- Writes one row per track x team (level 'track') and per track x team x task (level 'task'),
--        in display order: best first, ties to the team that reached its score earlier.
--
-- Baselines take a position but no rank. When the challenge is closed the final rank follows
-- the private mean (selection still follows the public scores, as teams saw them), except
-- for a team that marked final submissions: then only those count, the best private first.
WITH settings_row AS (SELECT policy, closed FROM settings LIMIT 1),
primary_scores AS (
    SELECT team, baseline, submission, submission_id, submitted_at, task,
           max(value) FILTER (WHERE split = 'public') AS public,
           max(value) FILTER (WHERE split = 'private') AS private
    FROM scores
    WHERE "primary"
    GROUP BY team, baseline, submission, submission_id, submitted_at, task
),
finals AS (
    SELECT p.*, f.submission_id IS NOT NULL AS picked,
           p.team IN (SELECT team FROM final_picks) AS has_picks
    FROM primary_scores AS p
    LEFT JOIN (SELECT DISTINCT team, submission_id FROM final_picks) AS f
           ON f.team = p.team AND f.submission_id = p.submission_id
),
choices AS (
    SELECT p.* EXCLUDE (picked, has_picks), row_number() OVER (
        PARTITION BY p.team, p.task
        ORDER BY CASE WHEN s.closed AND p.has_picks THEN p.private END DESC NULLS LAST,
                 CASE WHEN s.closed AND p.has_picks THEN p.submitted_at END ASC,
                 CASE WHEN s.policy = 'best-public' THEN p.public END DESC NULLS LAST,
                 CASE WHEN s.policy = 'best-public' THEN p.submitted_at END ASC,
                 CASE WHEN s.policy = 'best-public' THEN p.submission END ASC,
                 p.submitted_at DESC,
                 p.submission DESC
    ) AS choice
    FROM finals AS p CROSS JOIN settings_row AS s
    WHERE NOT (s.closed AND p.has_picks AND NOT p.picked)
),
chosen AS (
    SELECT * EXCLUDE (choice) FROM choices WHERE choice = 1
),
entrants AS (                                 -- a team enters a track with any task of it (any submission)
    SELECT DISTINCT c.team, c.baseline, t.track
    FROM primary_scores AS c JOIN tasks AS t ON t.task = c.task
),
cells AS (                                    -- every entrant x every task of its track
    SELECT e.track, e.team, e.baseline, t.task, t.metric, t.ord,
           c.public, c.private, c.submission_id, c.submitted_at
    FROM entrants AS e
    JOIN tasks AS t ON t.track = e.track
    LEFT JOIN chosen AS c ON c.team = e.team AND c.task = t.task
),
track_rows AS (
    SELECT track, team, baseline,
           CAST(sum(CAST(coalesce(public, 0) AS DECIMAL(38, 18))) AS DOUBLE) / count(*) AS public,
           CAST(sum(CAST(coalesce(private, 0) AS DECIMAL(38, 18))) AS DOUBLE) / count(*) AS private,
           count(*) FILTER (WHERE submission_id IS NULL) AS missing,
           max(submitted_at) AS reached_at
    FROM cells
    GROUP BY track, team, baseline
),
placed AS (
    SELECT r.*,
           CASE WHEN s.closed THEN r.private ELSE r.public END AS final,
           s.closed
    FROM track_rows AS r CROSS JOIN settings_row AS s
),
ordered AS (
    SELECT p.*,
           row_number() OVER (PARTITION BY track ORDER BY final DESC, reached_at ASC, team ASC) AS position,
           row_number() OVER (PARTITION BY track, baseline ORDER BY final DESC, reached_at ASC, team ASC) AS in_group,
           row_number() OVER (PARTITION BY track, baseline ORDER BY public DESC, reached_at ASC, team ASC) AS in_group_public
    FROM placed AS p
)
SELECT o.track, CAST(o.position AS INTEGER) AS position,
       CAST(CASE WHEN NOT o.baseline THEN o.in_group END AS INTEGER) AS rank,
       CAST(CASE WHEN NOT o.baseline THEN o.in_group_public END AS INTEGER) AS public_rank,
       o.team, o.baseline, 'track' AS level, CAST(NULL AS VARCHAR) AS task, 'mean' AS metric,
       o.public,
       CASE WHEN o.closed THEN o.private END AS private,
       CASE WHEN o.closed THEN o.public - o.private END AS gap,
       CAST(o.missing AS INTEGER) AS missing,
       CAST(NULL AS VARCHAR) AS submission_id, o.reached_at AS submitted_at,
       CAST(coalesce(m.entries, 0) AS INTEGER) AS entries, CAST(coalesce(m.rejected, 0) AS INTEGER) AS rejected,
       0 AS ord
FROM ordered AS o LEFT JOIN teams AS m ON m.team = o.team
UNION ALL
SELECT c.track, CAST(o.position AS INTEGER),
       CAST(CASE WHEN NOT o.baseline THEN o.in_group END AS INTEGER),
       CAST(CASE WHEN NOT o.baseline THEN o.in_group_public END AS INTEGER),
       c.team, c.baseline, 'task', c.task, c.metric,
       c.public,
       CASE WHEN o.closed THEN c.private END,
       CASE WHEN o.closed THEN c.public - c.private END,
       CAST(CASE WHEN c.submission_id IS NULL THEN 1 ELSE 0 END AS INTEGER),
       c.submission_id, c.submitted_at,
       CAST(coalesce(m.entries, 0) AS INTEGER), CAST(coalesce(m.rejected, 0) AS INTEGER),
       c.ord
FROM cells AS c
JOIN ordered AS o ON o.track = c.track AND o.team = c.team
LEFT JOIN teams AS m ON m.team = c.team
ORDER BY track, position, ord, task
