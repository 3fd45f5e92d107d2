-- One row when the named schema exists.
SELECT 1 FROM pg_namespace WHERE nspname = %(schema)s
