-- How many other sessions are connected to a database: one row (sessions).
SELECT count(*)::int AS sessions FROM pg_stat_activity WHERE datname = %(name)s AND pid <> pg_backend_pid()
