-- Collations, and this database's default collation, whose recorded version differs from what the C library or
-- ICU reports now. PostgreSQL records the database's version from 15 on: before, its pieces are NULL and the
-- second part finds nothing.
SELECT 'collation' AS kind, quote_ident(n.nspname) || '.' || quote_ident(c.collname) AS name, c.collversion AS recorded,
       pg_collation_actual_version(c.oid) AS actual
FROM pg_collation AS c
JOIN pg_namespace AS n ON n.oid = c.collnamespace
WHERE c.collversion IS NOT NULL
  AND c.collversion IS DISTINCT FROM pg_collation_actual_version(c.oid)
UNION ALL
SELECT 'database', quote_ident(d.datname), {database_recorded}, {database_actual}
FROM pg_database AS d
WHERE d.datname = current_database()
  AND {database_recorded} IS NOT NULL
  AND {database_recorded} IS DISTINCT FROM {database_actual}
ORDER BY 1, 2
