-- whether WAL replay is paused (at a recovery target with recovery_target_action = pause): paused, pause requested or not paused
SELECT pg_get_wal_replay_pause_state()
