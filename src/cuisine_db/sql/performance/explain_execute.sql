-- The plan of a prepared statement, as JSON; with plan_cache_mode = force_generic_plan the arguments do not shape it.
EXPLAIN (FORMAT JSON) EXECUTE {name}({arguments})
