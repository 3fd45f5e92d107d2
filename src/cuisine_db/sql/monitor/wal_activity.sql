-- WAL written since the statistics were reset (pg_stat_wal, PostgreSQL 14+): records, full-page images, bytes, and times the WAL buffers were full; plus the size and file count of pg_wal (pg_ls_waldir, granted to pg_monitor).
SELECT w.wal_records AS records,
       w.wal_fpi AS full_page_images,
       w.wal_bytes::bigint AS bytes,
       w.wal_buffers_full AS buffers_full,
       d.files AS directory_files,
       d.bytes AS directory_bytes
FROM pg_stat_wal AS w,
     (SELECT count(*) AS files, coalesce(sum(size), 0)::bigint AS bytes FROM pg_ls_waldir()) AS d
