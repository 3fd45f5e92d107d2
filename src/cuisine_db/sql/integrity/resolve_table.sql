-- The table a name given by the operator refers to (search_path applies to unqualified names), or no row.
SELECT c.oid::int8 AS oid, c.relkind::text AS kind, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS display
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass(%(name)s) AND c.relkind IN ('r', 'p', 'm')
