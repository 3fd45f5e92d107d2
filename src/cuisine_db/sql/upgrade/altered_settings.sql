-- Settings set with ALTER SYSTEM (postgresql.auto.conf): the new major must know each of them, or it will not start.
SELECT DISTINCT name FROM pg_file_settings WHERE sourcefile LIKE '%%postgresql.auto.conf' ORDER BY name
