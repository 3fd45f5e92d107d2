-- Foreign keys from or to the given tables, with their definition: rows (schema, table_name, name, definition).
SELECT n.nspname AS schema, cl.relname AS table_name, c.conname AS name, pg_get_constraintdef(c.oid) AS definition
FROM pg_constraint AS c
JOIN pg_class AS cl ON cl.oid = c.conrelid
JOIN pg_namespace AS n ON n.oid = cl.relnamespace
WHERE c.contype = 'f' AND (c.conrelid = ANY(%(oids)s::oid[]) OR c.confrelid = ANY(%(oids)s::oid[]))
ORDER BY 1, 2, 3
