-- Which of the named roles exist: rows (name).
SELECT rolname AS name FROM pg_roles WHERE rolname = ANY(%(names)s)
