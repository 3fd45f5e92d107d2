-- Foreign keys that point at a table (its own included): constraint, referencing table, ON DELETE action (a, r, c, n, d), referencing and referenced columns in order.
SELECT c.conname::text AS name,
       n.nspname::text AS child_schema,
       r.relname::text AS child_table,
       c.confdeltype::text AS on_delete,
       array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, position)
             JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
             ORDER BY k.position) AS child_columns,
       array(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, position)
             JOIN pg_attribute AS a ON a.attrelid = c.confrelid AND a.attnum = k.attnum
             ORDER BY k.position) AS parent_columns
FROM pg_constraint AS c
JOIN pg_class AS r ON r.oid = c.conrelid
JOIN pg_namespace AS n ON n.oid = r.relnamespace
WHERE c.contype = 'f' AND c.confrelid = %(oid)s
ORDER BY n.nspname, r.relname, c.conname
