-- Vacuums one table and refreshes its planner statistics; cannot run inside a transaction.
VACUUM (ANALYZE) {table}
