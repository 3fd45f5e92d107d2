-- Collects planner statistics for the whole database (a restored one has none); returns nothing.
ANALYZE
