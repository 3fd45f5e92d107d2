-- On a standby: whether it is one, and how far its replay is behind the last transaction it received (seconds).
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN pg_is_in_recovery() AND pg_last_wal_receive_lsn() IS DISTINCT FROM pg_last_wal_replay_lsn()
            THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
            ELSE 0.0 END AS replay_lag_seconds
