-- When this database's statistics were last reset (NULL: never), when the server started, and the time now.
SELECT d.stats_reset AS reset_at, pg_postmaster_start_time() AS server_started, now() AS now
FROM pg_stat_database AS d
WHERE d.datname = current_database()
