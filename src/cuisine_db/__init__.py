"""cuisine-db: the Cuisine Code database runbook as real, safe commands."""

__version__ = "0.1.0"
