-- Tables of this database with more dead rows than twice autovacuum's threshold (server-wide settings), the worst first.
SELECT s.schemaname AS schema, s.relname AS table_name, s.n_dead_tup AS dead_rows, s.n_live_tup AS live_rows,
       greatest(s.last_autovacuum, s.last_vacuum) AS last_vacuum
FROM pg_stat_user_tables AS s
JOIN pg_class AS c ON c.oid = s.relid
WHERE s.n_dead_tup > 2 * (current_setting('autovacuum_vacuum_threshold')::float8
                          + current_setting('autovacuum_vacuum_scale_factor')::float8 * greatest(c.reltuples, 0))
ORDER BY s.n_dead_tup DESC
LIMIT 20
