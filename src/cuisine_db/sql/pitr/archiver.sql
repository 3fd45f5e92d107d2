-- pg_stat_archiver, the current WAL file and insert position, the archive settings, and whether the server is in recovery
SELECT archived_count, last_archived_wal, last_archived_time, failed_count, last_failed_wal, last_failed_time,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_insert_lsn()) END AS current_wal,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_insert_lsn()::text END AS insert_lsn,
       current_setting('archive_mode') AS archive_mode, current_setting('archive_command') AS archive_command,
       current_setting('archive_timeout') AS archive_timeout,
       (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size') AS wal_segment_size,
       pg_is_in_recovery() AS in_recovery, now() AS now
FROM pg_stat_archiver
