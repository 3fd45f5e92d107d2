-- Sessions of the given roles still connected: rows (name, sessions), by name.
SELECT usename AS name, count(*)::int AS sessions FROM pg_stat_activity
WHERE usename = ANY(%(roles)s) AND pid <> pg_backend_pid()
GROUP BY 1 ORDER BY 1
