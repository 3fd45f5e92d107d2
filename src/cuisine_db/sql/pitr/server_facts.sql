-- version, version number, WAL segment size in bytes, data checksums, summarize_wal (NULL before 17), archive_mode
SELECT current_setting('server_version') AS version,
       current_setting('server_version_num')::int AS version_num,
       (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size') AS wal_segment_size,
       current_setting('data_checksums') = 'on' AS data_checksums,
       current_setting('summarize_wal', true) AS summarize_wal,
       current_setting('archive_mode') AS archive_mode
