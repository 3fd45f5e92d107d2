-- This server's recovery: whether it is a standby, seconds its replay is behind the last transaction it received (0 when caught up), WAL bytes received but not yet replayed.
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN pg_is_in_recovery() AND pg_last_wal_receive_lsn() IS DISTINCT FROM pg_last_wal_replay_lsn()
            THEN coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8, 0.0)
            ELSE 0.0 END AS replay_lag_seconds,
       CASE WHEN pg_is_in_recovery()
            THEN greatest(coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0), 0)::bigint
            ELSE 0::bigint END AS replay_lag_bytes
