-- The owner of a schema, or no row when it does not exist: (owner, owned_by_us).
SELECT pg_get_userbyid(nspowner) AS owner, nspowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) AS ours
FROM pg_namespace
WHERE nspname = %(schema)s
