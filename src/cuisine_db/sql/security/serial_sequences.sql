-- Sequences behind serial columns of the given tables of a schema (all its tables when tables is NULL); identity columns need no grant.
SELECT sn.nspname AS schema, s.relname AS name
FROM pg_depend AS d
JOIN pg_class AS s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_namespace AS sn ON sn.oid = s.relnamespace
JOIN pg_class AS t ON t.oid = d.refobjid
JOIN pg_namespace AS tn ON tn.oid = t.relnamespace
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'a'
  AND tn.nspname = %(schema)s AND (%(tables)s::text[] IS NULL OR t.relname = ANY(%(tables)s::text[]))
ORDER BY 1, 2
