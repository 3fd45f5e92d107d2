-- This database's cumulative counters (transactions, deadlocks, blocks hit/read) with when they were reset (null: never, or not counted yet) and when the server started.
SELECT d.datname AS database,
       d.xact_commit,
       d.xact_rollback,
       d.deadlocks,
       d.blks_hit,
       d.blks_read,
       d.temp_bytes,
       d.stats_reset,
       pg_postmaster_start_time() AS server_started,
       extract(epoch FROM clock_timestamp())::float8 AS taken_at
FROM pg_stat_database AS d
WHERE d.datname = current_database()
