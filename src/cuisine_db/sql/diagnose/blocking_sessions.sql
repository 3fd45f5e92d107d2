-- Every session that waits for a heavyweight lock or blocks one that does: who, what, for how long, and the pids blocking it (0 = a prepared transaction).
WITH waiting AS (
    SELECT pid, pg_blocking_pids(pid) AS blocked_by
    FROM pg_stat_activity
    WHERE wait_event_type = 'Lock'
),
involved AS (
    SELECT pid FROM waiting
    UNION
    SELECT unnest(blocked_by) FROM waiting
)
SELECT a.pid,
       coalesce(w.blocked_by, '{}'::int[]) AS blocked_by,
       a.backend_type,
       coalesce(a.datname, '') AS database,
       coalesce(a.usename, '') AS username,
       coalesce(a.application_name, '') AS application,
       coalesce(host(a.client_addr), 'local socket') AS client,
       coalesce(a.state, 'unknown') AS state,
       extract(epoch FROM now() - a.xact_start)::float8 AS xact_seconds,
       extract(epoch FROM now() - a.query_start)::float8 AS query_seconds,
       coalesce(a.query, '') AS query
FROM involved AS i
JOIN pg_stat_activity AS a ON a.pid = i.pid
LEFT JOIN waiting AS w ON w.pid = a.pid
ORDER BY a.xact_start NULLS LAST, a.pid
