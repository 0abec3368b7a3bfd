"""Board: ranking, immutable snapshots and their diffs, and the rendered leaderboard (templates/)."""
