-- Drops a database this run created, ending any session on it; returns nothing.
DROP DATABASE IF EXISTS {name} WITH (FORCE)
