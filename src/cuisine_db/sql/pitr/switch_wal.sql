-- closes the current WAL segment so the archiver can take it; returns the position
SELECT pg_switch_wal()::text
