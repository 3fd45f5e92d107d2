-- Physical replication slots on this primary: who holds each, the WAL it keeps (bytes) and whether that WAL is still there.
SELECT slot_name::text AS name,
       active,
       active_pid,
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint AS retained_bytes,
       coalesce(wal_status, 'unreserved') AS wal_status,
       safe_wal_size
FROM pg_replication_slots
WHERE slot_type = 'physical' AND NOT pg_is_in_recovery()
ORDER BY slot_name
