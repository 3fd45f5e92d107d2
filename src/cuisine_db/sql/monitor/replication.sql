-- Standbys and WAL receivers streaming from this server: how far behind each is, in bytes and seconds of replay.
SELECT coalesce(nullif(application_name, ''), 'unnamed') AS name,
       coalesce(host(client_addr), 'local socket') AS client,
       coalesce(state, 'unknown') AS state,
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn),
                pg_wal_lsn_diff(pg_current_wal_lsn(), sent_lsn))::bigint AS lag_bytes,
       extract(epoch FROM coalesce(replay_lag, flush_lag, write_lag))::float8 AS lag_seconds
FROM pg_stat_replication
WHERE NOT pg_is_in_recovery()
ORDER BY lag_bytes DESC NULLS LAST
