-- Roles that can log in, with their connection limit and whether limits bind them: rows (name, connlimit, superuser, replication, is_current), by name.
SELECT r.rolname AS name, r.rolconnlimit AS connlimit, r.rolsuper AS superuser, r.rolreplication AS replication,
       r.rolname = current_user AS is_current
FROM pg_roles AS r
WHERE r.rolcanlogin AND r.rolname !~ '^pg_'
ORDER BY 1
