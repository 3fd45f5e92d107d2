-- One row when the named database exists.
SELECT 1 FROM pg_database WHERE datname = %(name)s
