"""Stage logic of the MultiModal Tabular Challenge pipeline: plain functions, no orchestration."""
