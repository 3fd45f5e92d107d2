-- On a standby whose replay is paused: resumes it (one row, no value).
SELECT pg_wal_replay_resume()
