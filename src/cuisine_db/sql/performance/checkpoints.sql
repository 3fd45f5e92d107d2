-- Checkpoints since the statistics were reset (before PostgreSQL 17: pg_stat_bgwriter): started by timeout vs requested (WAL filled max_wal_size, or CHECKPOINT).
SELECT checkpoints_timed AS timed, checkpoints_req AS requested, stats_reset AS since FROM pg_stat_bgwriter
