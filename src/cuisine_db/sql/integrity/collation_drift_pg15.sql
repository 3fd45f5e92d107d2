-- Collations, and this database's default collation, whose recorded version differs from what the C library or
-- ICU reports now (PostgreSQL 15+ records the database's version too).
SELECT 'collation' AS kind, quote_ident(n.nspname) || '.' || quote_ident(c.collname) AS name, c.collversion AS recorded,
       pg_collation_actual_version(c.oid) AS actual
FROM pg_collation AS c
JOIN pg_namespace AS n ON n.oid = c.collnamespace
WHERE c.collversion IS NOT NULL
  AND c.collversion IS DISTINCT FROM pg_collation_actual_version(c.oid)
UNION ALL
SELECT 'database', quote_ident(d.datname), d.datcollversion, pg_database_collation_actual_version(d.oid)
FROM pg_database AS d
WHERE d.datname = current_database()
  AND d.datcollversion IS NOT NULL
  AND d.datcollversion IS DISTINCT FROM pg_database_collation_actual_version(d.oid)
ORDER BY 1, 2
