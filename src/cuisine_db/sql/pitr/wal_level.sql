-- the server's wal_level (archiving needs replica or logical)
SELECT current_setting('wal_level')
