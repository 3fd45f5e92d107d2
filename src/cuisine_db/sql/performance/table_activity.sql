-- User tables' reads and writes since the statistics were reset (the pg_stat_all_tables figures, read straight from the statistics functions): sequential scans and rows, live and dead rows, changes since ANALYZE, last (auto)vacuum and (auto)analyze.
SELECT c.oid AS table_oid, n.nspname AS schema, c.relname AS table_name,
       greatest(c.reltuples, 0)::float8 AS table_rows, c.reltuples < 0 AS never_counted,
       c.relpages::int8 * current_setting('block_size')::int8 AS bytes,
       pg_stat_get_numscans(c.oid) AS seq_scans, pg_stat_get_tuples_returned(c.oid) AS seq_rows_read,
       pg_stat_get_live_tuples(c.oid) AS live_rows, pg_stat_get_dead_tuples(c.oid) AS dead_rows,
       pg_stat_get_mod_since_analyze(c.oid) AS changed_since_analyze,
       pg_stat_get_last_vacuum_time(c.oid) AS last_vacuum, pg_stat_get_last_autovacuum_time(c.oid) AS last_autovacuum,
       pg_stat_get_last_analyze_time(c.oid) AS last_analyze,
       pg_stat_get_last_autoanalyze_time(c.oid) AS last_autoanalyze
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
  AND (%(table)s::oid IS NULL OR c.oid = %(table)s::oid)
