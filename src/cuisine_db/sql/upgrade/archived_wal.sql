-- The last WAL file the archiver stored and the last it failed on, with when.
SELECT last_archived_wal, last_failed_wal, last_failed_time FROM pg_stat_archiver
