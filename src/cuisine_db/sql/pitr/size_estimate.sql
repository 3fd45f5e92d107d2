-- the size of every database this role may measure, in bytes (what a base backup reads, roughly)
SELECT coalesce(sum(pg_database_size(oid)), 0)::bigint
FROM pg_database
WHERE has_database_privilege(oid, 'CONNECT') AND datallowconn
