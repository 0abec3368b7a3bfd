"""The demo challenge: seeded task generators (generators/) and seeded demo teams (teams.py)."""
