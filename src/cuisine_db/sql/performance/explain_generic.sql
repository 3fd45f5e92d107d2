-- The generic plan (parameters unknown) for a query with $n placeholders, as JSON (PostgreSQL 16+).
EXPLAIN (GENERIC_PLAN, FORMAT JSON) {query}
