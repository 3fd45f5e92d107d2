-- Every client session but this one: who, from where, its state, and how long its transaction, query and state have lasted.
SELECT a.pid,
       coalesce(a.datname, '') AS database,
       coalesce(a.usename, '') AS username,
       a.application_name AS application,
       coalesce(host(a.client_addr), 'local socket') AS client,
       coalesce(a.state, 'unknown') AS state,
       extract(epoch FROM now() - a.xact_start)::float8 AS xact_seconds,
       extract(epoch FROM now() - a.query_start)::float8 AS query_seconds,
       extract(epoch FROM now() - a.state_change)::float8 AS state_seconds,
       a.wait_event_type,
       a.wait_event,
       coalesce(a.query, '') AS query
FROM pg_stat_activity AS a
WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
ORDER BY a.xact_start NULLS LAST, a.pid
