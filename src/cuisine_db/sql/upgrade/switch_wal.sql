-- Closes the current WAL segment (writes are blocked by then) and returns its file name: the old cluster's last.
SELECT pg_walfile_name(pg_switch_wal()) AS last_wal
