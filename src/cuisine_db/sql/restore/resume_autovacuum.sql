-- Gives one table back to autovacuum's defaults after a restore loaded and analysed it; returns nothing.
ALTER TABLE {table} RESET (autovacuum_enabled)
