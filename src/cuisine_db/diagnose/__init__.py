"""Diagnostics, one module per thing looked at: sizes, connections, locks (the blocking tree), terminate, slow
queries (slow_queries, pgss), indexes (analysis, index_checks, index_advice, index_changes), explain, vacuum,
server_config; humanize formats sizes and durations for people.

Import from the module itself: this package imports nothing, so `diagnose.humanize` (used by the replica and
backup commands) does not load every diagnostic (~8 ms of each backup and restore command's start-up).
"""
