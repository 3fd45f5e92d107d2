-- Indexes left INVALID (by a failed CREATE INDEX CONCURRENTLY), with their table.
SELECT i.indexrelid::regclass::text AS index, i.indrelid::regclass::text AS table_name
FROM pg_index AS i
WHERE NOT i.indisvalid
ORDER BY 1
