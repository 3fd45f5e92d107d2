-- User tables of the current database with their heap size: rows (schema, name, bytes), by schema and name.
SELECT n.nspname AS schema, c.relname AS name, pg_relation_size(c.oid) AS bytes
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_(toast|temp_)'
ORDER BY 1, 2
