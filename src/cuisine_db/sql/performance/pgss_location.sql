-- Where pg_stat_statements is installed in this database (schema, version; NULLs when it is not), whether the server offers it, and whether it is preloaded.
SELECT (SELECT n.nspname FROM pg_extension AS e JOIN pg_namespace AS n ON n.oid = e.extnamespace
        WHERE e.extname = 'pg_stat_statements') AS schema,
       (SELECT e.extversion FROM pg_extension AS e WHERE e.extname = 'pg_stat_statements') AS version,
       EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements') AS available,
       current_setting('shared_preload_libraries') AS preload
