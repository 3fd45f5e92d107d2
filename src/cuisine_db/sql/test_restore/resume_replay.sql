-- Ends a recovery paused at its target, so the server promotes and opens read-write: no rows.
SELECT pg_wal_replay_resume()
