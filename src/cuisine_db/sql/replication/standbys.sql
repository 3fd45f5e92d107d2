-- Standbys streaming from this primary (pg_stat_replication): how far each has written, flushed and replayed, in bytes and seconds.
SELECT coalesce(application_name, '') AS name,
       coalesce(host(client_addr), 'local socket') AS client,
       pid,
       coalesce(state, 'unknown') AS state,
       coalesce(sync_state, 'unknown') AS sync_state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), write_lsn)::bigint AS write_bytes,
       pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn)::bigint AS flush_bytes,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS replay_bytes,
       extract(epoch FROM write_lag)::float8 AS write_seconds,
       extract(epoch FROM flush_lag)::float8 AS flush_seconds,
       extract(epoch FROM replay_lag)::float8 AS replay_seconds
FROM pg_stat_replication
WHERE NOT pg_is_in_recovery()
ORDER BY application_name, pid
