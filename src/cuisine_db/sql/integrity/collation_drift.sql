-- Collations whose recorded version differs from the version the C library or ICU reports now (PostgreSQL 14).
SELECT 'collation' AS kind, quote_ident(n.nspname) || '.' || quote_ident(c.collname) AS name, c.collversion AS recorded,
       pg_collation_actual_version(c.oid) AS actual
FROM pg_collation AS c
JOIN pg_namespace AS n ON n.oid = c.collnamespace
WHERE c.collversion IS NOT NULL
  AND c.collversion IS DISTINCT FROM pg_collation_actual_version(c.oid)
ORDER BY 2
