-- Applied migrations in the order they were applied (rows dbmate applied, without a sequence, first by version).
SELECT version::text AS version, name, checksum, applied_at, applied_by, duration_ms, applied_seq
FROM schema_migrations
ORDER BY applied_seq NULLS FIRST, version
