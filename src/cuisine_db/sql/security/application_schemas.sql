-- The schemas holding the application's tables: public, and every other schema with a table or view, but PostgreSQL's own and extensions'.
SELECT n.nspname::text AS schema
FROM pg_namespace AS n
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%'
  AND n.nspname NOT LIKE 'pg\_temp\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend AS d
                  WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
  AND (n.nspname = 'public'
       OR EXISTS (SELECT 1 FROM pg_class AS c
                  WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f')))
ORDER BY 1
