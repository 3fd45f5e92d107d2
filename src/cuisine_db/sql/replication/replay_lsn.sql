-- On a standby: the WAL position replayed so far (one row: lsn; NULL on a primary).
SELECT pg_last_wal_replay_lsn()::text AS lsn
