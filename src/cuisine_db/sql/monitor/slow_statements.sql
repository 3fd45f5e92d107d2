-- Statements of this database run at least min_calls times whose mean execution time is at least min_ms, slowest first (pg_stat_statements).
SELECT s.queryid::text AS queryid,
       s.calls,
       s.mean_exec_time::float8 AS mean_ms,
       s.max_exec_time::float8 AS max_ms,
       s.total_exec_time::float8 AS total_ms,
       s.query
FROM {schema}.pg_stat_statements AS s
JOIN pg_database AS d ON d.oid = s.dbid
WHERE d.datname = current_database() AND s.mean_exec_time >= %(min_ms)s AND s.calls >= %(min_calls)s
ORDER BY s.mean_exec_time DESC
LIMIT 5
