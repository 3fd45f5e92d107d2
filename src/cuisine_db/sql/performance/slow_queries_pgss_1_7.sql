-- The statements of this database that took the most execution time (pg_stat_statements 1.7-1.8: no toplevel; 1.8 renamed total_time to total_exec_time, mean_time and max_time likewise), with their share of the total.
SELECT queryid, query, userid::regrole::text AS role, NULL::boolean AS toplevel, calls,
       {total_time} AS total_ms, {mean_time} AS mean_ms, {max_time} AS max_ms, rows,
       shared_blks_hit, shared_blks_read, temp_blks_read, temp_blks_written,
       blk_read_time + blk_write_time AS io_ms, NULL::timestamptz AS since,
       coalesce({total_time} / nullif(sum({total_time}) OVER (), 0), 0) AS share
FROM {pgss}
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY {total_time} DESC
LIMIT %(limit)s
