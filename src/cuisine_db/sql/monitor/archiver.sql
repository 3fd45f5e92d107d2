-- WAL archiving: whether it is on, how many segments were archived or failed, and whether the last attempt failed.
SELECT current_setting('archive_mode') AS archive_mode,
       a.archived_count,
       a.failed_count,
       a.last_failed_wal,
       extract(epoch FROM now() - a.last_failed_time)::float8 AS last_failed_seconds,
       extract(epoch FROM now() - a.last_archived_time)::float8 AS last_archived_seconds,
       coalesce(a.last_failed_time > coalesce(a.last_archived_time, '-infinity'), false) AS failing
FROM pg_stat_archiver AS a
