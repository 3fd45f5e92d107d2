-- Asks the backend to cancel its current query (pg_cancel_backend); true when the signal was sent.
SELECT pg_cancel_backend(%(pid)s) AS sent
