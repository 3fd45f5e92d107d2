-- tablespace/database/relfilenode of every table (and its TOAST table) in this database, with the table's name
SELECT coalesce(nullif(f.reltablespace, 0), d.dattablespace)::text || '/' || d.oid::text || '/'
           || f.relfilenode::text AS file,
       n.nspname || '.' || c.relname AS relation
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_database d ON d.datname = current_database()
JOIN pg_class f ON f.oid = c.oid OR f.oid = c.reltoastrelid
WHERE c.relkind IN ('r', 'm', 'p')
  AND f.relfilenode <> 0
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%'
