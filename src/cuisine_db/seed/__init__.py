"""Deterministic Cuisine Code seed data, loaded with COPY."""

from cuisine_db.seed.load import SeedReport, load

__all__ = ["SeedReport", "load"]
