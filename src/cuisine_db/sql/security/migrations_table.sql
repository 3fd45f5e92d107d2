-- The schema and name of schema_migrations as the search path finds it, or no row.
SELECT n.nspname::text AS schema, c.relname::text AS name
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass('schema_migrations')
