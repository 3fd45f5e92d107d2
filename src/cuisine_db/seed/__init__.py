"""Deterministic Cuisine Code seed data, loaded with COPY."""

from cuisine_db.seed.load import SeedReport, load, replace_rows

__all__ = ["SeedReport", "load", "replace_rows"]
