-- Moves a sequence up to its column's largest value, never down: zero or one row (setval).
SELECT setval(%(sequence)s::regclass, m.top)
FROM (SELECT max({column})::bigint AS top FROM {table}) AS m
WHERE m.top IS NOT NULL AND m.top > coalesce(pg_sequence_last_value(%(sequence)s::regclass), 0)
