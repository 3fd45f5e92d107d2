-- Checkpoints since the statistics were reset (PostgreSQL 17+: pg_stat_checkpointer): started by timeout vs requested (WAL filled max_wal_size, or CHECKPOINT).
SELECT num_timed AS timed, num_requested AS requested, stats_reset AS since FROM pg_stat_checkpointer
