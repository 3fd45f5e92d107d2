"""Operational records and rails: the journal, maintenance mode (later: incidents, integrity)."""
