-- Ends the backend's session (pg_terminate_backend), waiting up to timeout_ms for it to exit; true when it did.
SELECT pg_terminate_backend(%(pid)s, %(timeout_ms)s) AS ended
