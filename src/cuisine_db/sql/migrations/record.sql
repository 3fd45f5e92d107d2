-- Records one applied migration, numbering it after every earlier one.
INSERT INTO schema_migrations (version, name, checksum, applied_at, applied_by, duration_ms, applied_seq)
SELECT %(version)s, %(name)s, %(checksum)s, clock_timestamp(), %(applied_by)s || ' as ' || current_user,
       %(duration_ms)s, coalesce(max(applied_seq), 0) + 1
FROM schema_migrations
