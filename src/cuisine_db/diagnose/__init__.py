"""Diagnostics, one module per thing looked at: sizes, connections, locks (the blocking tree), terminate, slow
queries (slow_queries, pgss), indexes (analysis, index_checks, index_advice, index_changes), explain, vacuum,
server_config (sizes and durations for people: `cuisine_db.humanize`).

Import from the module itself: this package imports nothing, so one diagnostic does not load every other.
"""
