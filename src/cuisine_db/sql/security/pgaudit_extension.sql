-- One row when the pgaudit extension is created in the current database.
SELECT extversion FROM pg_extension WHERE extname = 'pgaudit'
