-- One server process by pid: what it is and does, whether it is this very session, and whether it is an anti-wraparound autovacuum.
SELECT a.pid,
       coalesce(a.backend_type, '') AS backend_type,
       coalesce(a.datname, '') AS database,
       coalesce(a.usename, '') AS username,
       coalesce(a.application_name, '') AS application,
       coalesce(host(a.client_addr), 'local socket') AS client,
       coalesce(a.state, '') AS state,
       a.backend_start,
       extract(epoch FROM now() - a.xact_start)::float8 AS xact_seconds,
       extract(epoch FROM now() - a.query_start)::float8 AS query_seconds,
       a.query_start,
       coalesce(a.query, '') AS query,
       a.pid = pg_backend_pid() AS is_self,
       (a.backend_type = 'autovacuum worker' AND a.query LIKE '%%(to prevent wraparound)%%') AS wraparound
FROM pg_stat_activity AS a
WHERE a.pid = %(pid)s
