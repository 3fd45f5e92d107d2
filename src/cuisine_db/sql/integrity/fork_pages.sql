-- The size in pages of each requested (relation, fork) pair that exists; pairs come as two parallel arrays.
SELECT f.oid::int8 AS oid, f.fork, pg_relation_size(f.oid::oid::regclass, f.fork) / current_setting('block_size')::int8 AS pages
FROM unnest(%(oids)s::int8[], %(forks)s::text[]) AS f (oid, fork)
WHERE EXISTS (SELECT FROM pg_class WHERE oid = f.oid::oid)
  AND pg_relation_size(f.oid::oid::regclass, f.fork) > 0
