-- Every database's cumulative counters (pg_stat_database, PostgreSQL 14+) and its recovery conflicts (pg_stat_database_conflicts, the five kinds every supported version has); times in ms.
SELECT d.datname AS database,
       d.numbackends AS backends,
       d.xact_commit AS commits,
       d.xact_rollback AS rollbacks,
       d.blks_read AS blocks_read,
       d.blks_hit AS blocks_hit,
       d.tup_returned AS rows_returned,
       d.tup_fetched AS rows_fetched,
       d.tup_inserted AS rows_inserted,
       d.tup_updated AS rows_updated,
       d.tup_deleted AS rows_deleted,
       d.conflicts,
       d.temp_files,
       d.temp_bytes,
       d.deadlocks,
       d.blk_read_time::float8 AS read_ms,
       d.blk_write_time::float8 AS write_ms,
       d.session_time::float8 AS session_ms,
       d.active_time::float8 AS active_ms,
       d.idle_in_transaction_time::float8 AS idle_in_transaction_ms,
       d.sessions,
       d.sessions_abandoned,
       d.sessions_fatal,
       d.sessions_killed,
       c.confl_tablespace AS conflicts_tablespace,
       c.confl_lock AS conflicts_lock,
       c.confl_snapshot AS conflicts_snapshot,
       c.confl_bufferpin AS conflicts_bufferpin,
       c.confl_deadlock AS conflicts_deadlock
FROM pg_stat_database AS d
JOIN pg_stat_database_conflicts AS c ON c.datid = d.datid
WHERE d.datname IS NOT NULL
ORDER BY d.datname
