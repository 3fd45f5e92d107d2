-- Client sessions by database, user and state (this one excluded), plus how many of them wait for a lock.
SELECT coalesce(datname, '') AS database,
       coalesce(usename, '') AS username,
       coalesce(state, 'unknown') AS state,
       count(*) AS sessions,
       count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting_for_lock
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
