-- When this database was created, read from its PG_VERSION file's time (needs superuser or pg_read_server_files).
SELECT (pg_stat_file('base/' || d.oid || '/PG_VERSION')).modification AS created
FROM pg_database AS d
WHERE d.datname = current_database()
