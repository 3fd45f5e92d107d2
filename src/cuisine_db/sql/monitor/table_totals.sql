-- Every ordinary table's total size (heap, indexes, TOAST) and row estimate, for the growth snapshots.
SELECT n.nspname AS schema,
       c.relname AS name,
       pg_total_relation_size(c.oid) AS total_bytes,
       greatest(c.reltuples, 0)::bigint AS row_estimate
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%'
