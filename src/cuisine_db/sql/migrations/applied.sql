-- Applied migrations in version order, with what cuisine-db records beyond the version (NULL where dbmate wrote the row).
SELECT version::text AS version, name, checksum, applied_at, applied_by, duration_ms, applied_seq
FROM schema_migrations
ORDER BY version COLLATE "C"
