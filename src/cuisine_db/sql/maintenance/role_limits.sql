-- The connection limit of the named roles that exist: rows (name, connlimit).
SELECT rolname AS name, rolconnlimit AS connlimit FROM pg_roles WHERE rolname = ANY(%(names)s) ORDER BY 1
