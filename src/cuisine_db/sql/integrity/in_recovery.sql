-- Whether the server is a standby (replaying WAL), where unlogged relations hold no data.
SELECT pg_is_in_recovery()
