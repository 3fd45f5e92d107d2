-- Keeps autovacuum off one table while a restore loads it; returns nothing.
ALTER TABLE {table} SET (autovacuum_enabled = false)
