-- Ordinary tables by total size: heap, indexes, TOAST, row estimate and dead-tuple share.
SELECT n.nspname AS schema,
       c.relname AS table_name,
       pg_table_size(c.oid) - coalesce(pg_total_relation_size(c.reltoastrelid), 0) AS heap_bytes,
       pg_indexes_size(c.oid) AS index_bytes,
       coalesce(pg_total_relation_size(c.reltoastrelid), 0) AS toast_bytes,
       pg_total_relation_size(c.oid) AS total_bytes,
       greatest(c.reltuples, 0)::bigint AS row_estimate,
       CASE WHEN coalesce(s.n_live_tup, 0) + coalesce(s.n_dead_tup, 0) = 0 THEN 0.0
            ELSE round(s.n_dead_tup::numeric / (s.n_live_tup + s.n_dead_tup), 4)::float8
       END AS dead_share
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables AS s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'p', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%'
ORDER BY total_bytes DESC, schema, table_name
LIMIT %(limit)s
