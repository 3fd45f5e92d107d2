-- Whether the server offers hypopg, and the schema it is installed in here (NULL when it is not).
SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg') AS available,
       (SELECT n.nspname FROM pg_extension AS e JOIN pg_namespace AS n ON n.oid = e.extnamespace
        WHERE e.extname = 'hypopg') AS schema
