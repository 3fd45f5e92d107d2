-- The relation a name refers to (schema-qualified, or found on the search path): oid, schema, name, kind and its columns in order.
SELECT c.oid AS table_oid, n.nspname AS schema, c.relname AS table_name, c.relkind::text AS kind,
       array(SELECT a.attname::text FROM pg_attribute AS a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS columns
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass(CASE WHEN %(schema)s::text IS NULL THEN quote_ident(%(name)s)
                               ELSE quote_ident(%(schema)s) || '.' || quote_ident(%(name)s) END)
