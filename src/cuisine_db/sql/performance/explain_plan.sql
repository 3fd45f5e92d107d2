-- The plan the server would choose for the query, as JSON, without running it.
EXPLAIN (FORMAT JSON) {query}
