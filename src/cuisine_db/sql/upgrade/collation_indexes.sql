-- Indexes of the current database that depend on a collation other than C/POSIX (their order may change with a new libc or ICU), with the collation's version here.
SELECT DISTINCT i.indexrelid::regclass::text AS index_name, c.collname::text AS collation, c.collprovider::text AS provider,
       coalesce(pg_collation_actual_version(c.oid), '') AS version
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indcollation::oid[]) AS used(oid)
JOIN pg_collation c ON c.oid = used.oid
WHERE c.collname NOT IN ('C', 'POSIX', 'ucs_basic', 'default')
ORDER BY 1, 2
