-- Exports this transaction's snapshot for pg_dump --snapshot, with the WAL position it sees: one row (snapshot, lsn).
SELECT pg_export_snapshot() AS snapshot,
       (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn
