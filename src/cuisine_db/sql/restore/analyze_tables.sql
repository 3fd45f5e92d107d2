-- Collects planner statistics for the restored tables; returns nothing.
ANALYZE {tables}
