-- Ends the sessions of the given roles (not this one): rows (pid, name, terminated) of the sessions signalled.
SELECT pid, usename AS name, pg_terminate_backend(pid) AS terminated
FROM pg_stat_activity
WHERE usename = ANY(%(roles)s) AND pid <> pg_backend_pid()
