-- User tables' reads and writes since the statistics were reset: scans, rows, dead rows, changes since ANALYZE, last (auto)vacuum and (auto)analyze.
SELECT s.relid AS table_oid, s.schemaname AS schema, s.relname AS table_name,
       greatest(c.reltuples, 0)::float8 AS table_rows, c.reltuples < 0 AS never_counted,
       pg_relation_size(s.relid) AS bytes,
       coalesce(s.seq_scan, 0) AS seq_scans, coalesce(s.seq_tup_read, 0) AS seq_rows_read,
       coalesce(s.idx_scan, 0) AS index_scans,
       s.n_live_tup AS live_rows, s.n_dead_tup AS dead_rows, s.n_mod_since_analyze AS changed_since_analyze,
       s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze
FROM pg_stat_user_tables AS s
JOIN pg_class AS c ON c.oid = s.relid
WHERE c.relkind IN ('r', 'm', 'p')
  AND (%(table)s::oid IS NULL OR s.relid = %(table)s::oid)
ORDER BY s.schemaname, s.relname
