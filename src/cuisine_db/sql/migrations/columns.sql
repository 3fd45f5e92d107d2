-- The names of schema_migrations' columns (none when the table does not exist), to read tables dbmate created.
SELECT coalesce(array_agg(attname::text ORDER BY attnum), '{}') AS columns
FROM pg_attribute
WHERE attrelid = to_regclass('schema_migrations') AND attnum > 0 AND NOT attisdropped
