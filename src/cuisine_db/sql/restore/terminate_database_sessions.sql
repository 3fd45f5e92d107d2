-- Ends every other session on a database: rows (pid, terminated) of the sessions signalled.
SELECT pid, pg_terminate_backend(pid) AS terminated
FROM pg_stat_activity
WHERE datname = %(name)s AND pid <> pg_backend_pid()
