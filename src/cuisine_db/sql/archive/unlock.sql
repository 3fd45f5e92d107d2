-- Releases the archive runs' session advisory lock on one table.
SELECT pg_advisory_unlock(%(space)s, %(key)s) AS released
