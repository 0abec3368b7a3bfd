"""Ingest: contributions in, a standardised release and its hidden labels out (readers, split, registration)."""
