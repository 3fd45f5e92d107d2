-- What PgBouncer's pools are sized from: one row (max_connections, the slots reserved for superusers and for reserved_connections' roles, database, whether we are superuser).
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS superuser_reserved,
       coalesce(current_setting('reserved_connections', true), '0')::int AS reserved,
       current_database() AS database,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser
