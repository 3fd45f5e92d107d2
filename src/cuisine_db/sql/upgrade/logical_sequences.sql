-- Every sequence of the user schemas (name as regclass text, last_value or null when never used, and the table schema, table and column that own it, or nulls).
SELECT format('%I.%I', s.schemaname, s.sequencename) AS name, s.last_value,
       tn.nspname AS table_schema, t.relname AS table_name, a.attname AS column_name
FROM pg_sequences AS s
JOIN pg_namespace AS sn ON sn.nspname = s.schemaname
JOIN pg_class AS sc ON sc.relnamespace = sn.oid AND sc.relname = s.sequencename
LEFT JOIN pg_depend AS d ON d.classid = 'pg_class'::regclass AND d.objid = sc.oid
     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
LEFT JOIN pg_class AS t ON t.oid = d.refobjid
LEFT JOIN pg_namespace AS tn ON tn.oid = t.relnamespace
LEFT JOIN pg_attribute AS a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1
