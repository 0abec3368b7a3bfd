"""Scoring: every stored submission against the hidden labels, in DuckDB SQL (the .sql files beside it)."""
