-- The columns (number and name) of user tables, to name index keys without a subquery per index.
SELECT a.attrelid AS table_oid, a.attnum::int AS attnum, a.attname::text AS name
FROM pg_attribute AS a
JOIN pg_class AS t ON t.oid = a.attrelid
JOIN pg_namespace AS n ON n.oid = t.relnamespace
WHERE a.attnum > 0 AND NOT a.attisdropped AND t.relkind IN ('r', 'm', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
  AND (%(table)s::oid IS NULL OR a.attrelid = %(table)s::oid)
