-- Adds a constraint from its definition (pg_get_constraintdef), validating it unless NOT VALID; returns nothing.
ALTER TABLE {table} ADD CONSTRAINT {name} {definition}
