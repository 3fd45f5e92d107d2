-- The extensions installed in the current database, with their versions.
SELECT extname, extversion FROM pg_extension ORDER BY extname
