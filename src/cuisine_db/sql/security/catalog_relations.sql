-- Which of the given names are relations of PostgreSQL's own catalogs (pg_catalog, information_schema), compared without case.
SELECT DISTINCT lower(c.relname)::text AS name
FROM pg_class AS c
WHERE c.relnamespace IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
  AND lower(c.relname) = ANY(%(names)s::text[])
  AND lower(c.relname) LIKE 'pg\_%%'
