-- Discards this transaction's cached statistics snapshot, so the next read sees fresh counters.
SELECT pg_stat_clear_snapshot()
