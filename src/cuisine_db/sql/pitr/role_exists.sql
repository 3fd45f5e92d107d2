-- whether a role exists
SELECT 1 FROM pg_roles WHERE rolname = %(name)s
