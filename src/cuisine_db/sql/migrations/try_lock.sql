-- Takes the migration runners' session advisory lock without waiting; true when taken.
SELECT pg_try_advisory_lock(%(key)s) AS taken
