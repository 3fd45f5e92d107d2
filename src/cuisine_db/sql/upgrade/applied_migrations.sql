-- The migrations applied to the current database (dbmate's schema_migrations), by version.
SELECT version FROM schema_migrations ORDER BY version
