-- Names of the roles that are superusers.
SELECT rolname::text AS name FROM pg_roles WHERE rolsuper ORDER BY 1
