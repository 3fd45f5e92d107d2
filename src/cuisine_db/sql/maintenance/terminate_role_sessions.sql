-- Ends the sessions of the given roles (not this one): rows (pid, terminated) of the sessions signalled.
SELECT pid, pg_terminate_backend(pid) AS terminated
FROM pg_stat_activity
WHERE usename = ANY(%(roles)s) AND pid <> pg_backend_pid()
