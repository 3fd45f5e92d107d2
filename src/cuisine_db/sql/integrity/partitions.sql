-- The partitions (at every level) of the given partitioned tables, which hold their rows.
SELECT relid::oid::int8 AS oid FROM unnest(%(tables)s::int8[]) AS t (oid), pg_partition_tree(t.oid::oid::regclass)
WHERE isleaf
