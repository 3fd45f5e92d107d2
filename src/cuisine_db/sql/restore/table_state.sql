-- The named tables that exist, with their oid and kind: rows (schema, name, oid, kind).
SELECT n.nspname AS schema, c.relname AS name, c.oid::int8 AS oid, c.relkind::text AS kind
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN unnest(%(schemas)s::text[], %(names)s::text[]) AS t(schema, name) ON t.schema = n.nspname AND t.name = c.relname
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
