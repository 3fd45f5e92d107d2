-- Connection slots: max_connections, the slots reserved for superusers (and pg_use_reserved_connections on 16+), and client sessions in use besides this one.
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int
         + coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved,
       (SELECT count(*) FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())::int AS in_use
