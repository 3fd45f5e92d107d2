-- Removes one migration's record after its down section ran.
DELETE FROM schema_migrations WHERE version = %(version)s
