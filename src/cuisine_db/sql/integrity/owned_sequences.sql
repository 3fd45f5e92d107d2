-- Sequences behind a table column (serial or identity), with their step and the column's table.
SELECT sn.nspname AS sequence_schema, s.relname AS sequence_name,
       tn.nspname AS table_schema, t.relname AS table_name, a.attname::text AS column_name,
       seq.seqincrement AS increment,
       a.attidentity <> '' AS identity
FROM pg_depend AS d
JOIN pg_class AS s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_namespace AS sn ON sn.oid = s.relnamespace
JOIN pg_sequence AS seq ON seq.seqrelid = s.oid
JOIN pg_class AS t ON t.oid = d.refobjid
JOIN pg_namespace AS tn ON tn.oid = t.relnamespace
JOIN pg_attribute AS a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  AND t.relkind IN ('r', 'p')
  AND (%(tables)s::int8[] IS NULL OR t.oid::int8 = ANY (%(tables)s::int8[]))
ORDER BY 1, 2
