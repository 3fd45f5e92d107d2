-- Foreign keys of user tables: the referencing table, its key columns (numbers and names) and the referenced table.
SELECT con.conrelid AS table_oid, n.nspname AS schema, t.relname AS table_name, con.conname AS name,
       con.conkey AS keys,
       array(SELECT a.attname::text
             FROM unnest(con.conkey) WITH ORDINALITY AS k (attnum, position)
             JOIN pg_attribute AS a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.position) AS columns,
       con.confrelid::regclass::text AS referenced, greatest(t.reltuples, 0)::float8 AS table_rows
FROM pg_constraint AS con
JOIN pg_class AS t ON t.oid = con.conrelid
JOIN pg_namespace AS n ON n.oid = t.relnamespace
WHERE con.contype = 'f'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
  AND (%(table)s::oid IS NULL OR con.conrelid = %(table)s::oid)
ORDER BY n.nspname, t.relname, con.conname
