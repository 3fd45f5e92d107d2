-- Takes the archive runs' session advisory lock on one table without waiting: true when taken.
SELECT pg_try_advisory_lock(%(space)s, %(key)s) AS taken
