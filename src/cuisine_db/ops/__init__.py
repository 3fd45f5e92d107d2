"""Operational records and rails: the journal (later: maintenance mode, incidents, integrity)."""
