"""The shared contracts: params and manifest models, the release schema, errors, file helpers."""

__version__ = "0.1.0"
