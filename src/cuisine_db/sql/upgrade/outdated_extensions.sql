-- Installed extensions of the current database whose build offers a newer version (ALTER EXTENSION ... UPDATE).
SELECT e.extname::text, e.extversion, a.default_version
FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname
WHERE a.default_version IS DISTINCT FROM e.extversion ORDER BY 1
