-- Applied migrations of a table only dbmate has written (just the version column), in version order.
SELECT version::text AS version, NULL::text AS name, NULL::text AS checksum, NULL::timestamptz AS applied_at,
       NULL::text AS applied_by, NULL::integer AS duration_ms, NULL::bigint AS applied_seq
FROM schema_migrations
ORDER BY version COLLATE "C"
