-- Sessions of the current database, other than this one, that are working rather than waiting for a lock (count).
SELECT count(*)
FROM pg_stat_activity
WHERE datname = current_database()
  AND state = 'active'
  AND pid <> pg_backend_pid()
  AND wait_event_type IS DISTINCT FROM 'Lock'
