-- A logical slot's position against the server's WAL (current, confirmed, lag_bytes); no row when the slot does not exist.
SELECT pg_current_wal_lsn()::text AS current, confirmed_flush_lsn::text AS confirmed,
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn), 0)::bigint AS lag_bytes,
       (confirmed_flush_lsn >= %(lsn)s::pg_lsn) AS reached
FROM pg_replication_slots
WHERE slot_name = %(slot)s
