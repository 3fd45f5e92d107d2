-- This build's version of the named collations (the new side of the pre-flight's collation comparison).
SELECT collname::text AS collation, collprovider::text AS provider, coalesce(pg_collation_actual_version(oid), '') AS version
FROM pg_collation WHERE collname = ANY(%(names)s)
