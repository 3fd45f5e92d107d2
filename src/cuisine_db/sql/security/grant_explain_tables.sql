-- Lets the explain role read and (inside db-explain's rolled-back transaction) write every table of a schema.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}
