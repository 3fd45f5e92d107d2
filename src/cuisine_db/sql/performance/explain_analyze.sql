-- Runs the query inside the caller's transaction and returns its plan with timings and buffer counts, as JSON.
EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query}
