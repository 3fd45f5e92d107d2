-- The server's wal_level (one text value).
SELECT current_setting('wal_level')
