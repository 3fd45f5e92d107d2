-- Releases the migration runners' session advisory lock.
SELECT pg_advisory_unlock(%(key)s) AS released
