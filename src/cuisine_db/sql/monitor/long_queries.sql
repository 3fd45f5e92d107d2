-- Client queries running longer than min_seconds, longest first.
SELECT pid,
       coalesce(usename, '') AS username,
       coalesce(datname, '') AS database,
       coalesce(application_name, '') AS application,
       extract(epoch FROM now() - query_start)::float8 AS seconds,
       wait_event_type,
       coalesce(query, '') AS query
FROM pg_stat_activity
WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND now() - query_start >= make_interval(secs => %(min_seconds)s)
ORDER BY query_start
LIMIT 20
