-- Fresh planner statistics for the seeded tables.
ANALYZE {tables}
