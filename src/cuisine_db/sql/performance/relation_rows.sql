-- The planner's row count (pg_class.reltuples, 0 when unknown) of each named relation, as found on the search path.
SELECT name, greatest(coalesce(c.reltuples, 0), 0)::float8 AS row_count
FROM unnest(%(names)s::text[]) AS name
LEFT JOIN pg_class AS c ON c.oid = to_regclass(quote_ident(name))
