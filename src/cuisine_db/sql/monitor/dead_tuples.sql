-- Tables with many dead rows: counts, dead share, and when (auto)vacuum last ran, most dead rows first.
SELECT schemaname AS schema,
       relname AS table_name,
       n_live_tup AS live_rows,
       n_dead_tup AS dead_rows,
       round(n_dead_tup::numeric / greatest(n_live_tup + n_dead_tup, 1), 4)::float8 AS dead_share,
       extract(epoch FROM now() - greatest(last_vacuum, last_autovacuum))::float8 AS vacuumed_seconds
FROM pg_stat_user_tables
WHERE n_dead_tup >= %(min_rows)s
  AND n_dead_tup::numeric / greatest(n_live_tup + n_dead_tup, 1) >= %(min_share)s
ORDER BY n_dead_tup DESC
LIMIT 10
