-- Enabled user triggers on the given tables: rows (schema, table_name, name, enabled) where enabled is O, A or R.
SELECT n.nspname AS schema, c.relname AS table_name, t.tgname AS name, t.tgenabled::text AS enabled
FROM pg_trigger AS t
JOIN pg_class AS c ON c.oid = t.tgrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' AND t.tgrelid = ANY(%(oids)s::oid[])
ORDER BY 1, 2, 3
