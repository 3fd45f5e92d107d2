-- For the rest of this transaction, steers the planner from a hash anti-join to merging the two tables' indexes
-- (both already in key order): several times faster for a large child whose foreign key columns are indexed.
SELECT set_config('enable_hashjoin', 'off', true)
