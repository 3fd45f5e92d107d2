-- Collations that record a version, one by one (the fallback when one of them cannot be loaded on this system).
SELECT c.oid::int8 AS oid, quote_ident(n.nspname) || '.' || quote_ident(c.collname) AS name, c.collversion AS recorded
FROM pg_collation AS c
JOIN pg_namespace AS n ON n.oid = c.collnamespace
WHERE c.collversion IS NOT NULL
ORDER BY 2
