"""Stage logic of the MultiModal Tabular Challenge pipeline: plain functions, no orchestration."""

__version__ = "0.1.0"
