-- Temporary files written by queries that ran out of work_mem, across all databases, since the statistics were reset.
SELECT coalesce(sum(temp_files), 0)::int8 AS files, coalesce(sum(temp_bytes), 0)::int8 AS bytes,
       min(stats_reset) AS since
FROM pg_stat_database
