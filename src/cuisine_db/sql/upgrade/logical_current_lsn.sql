-- The server's current WAL write position (text).
SELECT pg_current_wal_lsn()::text
