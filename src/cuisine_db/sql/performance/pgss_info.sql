-- When pg_stat_statements was last reset and how many entries it evicted since (pg_stat_statements 1.9+).
SELECT stats_reset AS reset_at, dealloc AS evicted FROM {info}
