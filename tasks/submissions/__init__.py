"""Submissions: validation of a team's files against the release, and their atomic storage (the one way in)."""
