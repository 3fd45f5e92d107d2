-- The relation of that name in that schema, if any: kind, and for an index its table, validity, size and CREATE INDEX statement.
SELECT c.oid AS relation_oid, c.relkind::text AS kind, i.indrelid AS table_oid, i.indisvalid AS is_valid,
       pg_relation_size(c.oid) AS bytes, CASE WHEN i.indexrelid IS NOT NULL THEN pg_get_indexdef(c.oid) END AS definition
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_index AS i ON i.indexrelid = c.oid
WHERE n.nspname = %(schema)s AND c.relname = %(name)s
