-- Drops one constraint of a table; returns nothing.
ALTER TABLE {table} DROP CONSTRAINT {name}
