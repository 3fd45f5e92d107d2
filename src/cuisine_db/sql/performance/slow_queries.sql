-- The statements of this database that took the most execution time (pg_stat_statements 1.11+: shared_blk_read_time, stats_since), with their share of the top-level total.
SELECT queryid, query, userid::regrole::text AS role, toplevel, calls,
       total_exec_time AS total_ms, mean_exec_time AS mean_ms, max_exec_time AS max_ms, rows,
       shared_blks_hit, shared_blks_read, temp_blks_read, temp_blks_written,
       shared_blk_read_time + shared_blk_write_time AS io_ms, stats_since AS since,
       coalesce(total_exec_time / nullif(sum(total_exec_time) FILTER (WHERE toplevel) OVER (), 0), 0) AS share
FROM {pgss}
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY total_exec_time DESC
LIMIT %(limit)s
