-- Sequences owned by columns of the given tables: rows (sequence, schema, table_name, column_name).
SELECT d.objid::regclass::text AS sequence, n.nspname AS schema, c.relname AS table_name, a.attname AS column_name
FROM pg_depend AS d
JOIN pg_class AS s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_class AS c ON c.oid = d.refobjid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_attribute AS a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  AND d.refobjid = ANY(%(oids)s::oid[])
