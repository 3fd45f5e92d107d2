-- Every user table of this database, largest first, at most row_limit of them: scans, live and dead rows, rows changed since the last analyze, vacuum and analyze ages (manual or auto, seconds; null: never); one pass over the statistics and pg_class, no table opened.
SELECT s.schemaname AS schema,
       s.relname AS table_name,
       s.seq_scan AS seq_scans,
       coalesce(s.idx_scan, 0) AS index_scans,
       s.n_live_tup AS live_rows,
       s.n_dead_tup AS dead_rows,
       s.n_mod_since_analyze AS changed_since_analyze,
       extract(epoch FROM now() - greatest(s.last_vacuum, s.last_autovacuum))::float8 AS vacuum_age_seconds,
       extract(epoch FROM now() - greatest(s.last_analyze, s.last_autoanalyze))::float8 AS analyze_age_seconds,
       count(*) OVER () AS tables
FROM pg_stat_user_tables AS s
JOIN pg_class AS c ON c.oid = s.relid
ORDER BY c.relpages DESC, s.schemaname, s.relname
LIMIT %(row_limit)s
