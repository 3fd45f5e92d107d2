-- True when schema_migrations exists in the search path.
SELECT to_regclass('schema_migrations') IS NOT NULL AS present
