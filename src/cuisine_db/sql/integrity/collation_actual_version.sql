-- The version the C library or ICU reports now for one collation.
SELECT pg_collation_actual_version(%(oid)s::oid)
