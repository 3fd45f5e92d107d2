-- Publishes every table of the database (the logical method's source of changes).
CREATE PUBLICATION {name} FOR ALL TABLES
