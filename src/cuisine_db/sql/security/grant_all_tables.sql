-- Grants table privileges on every existing table of a schema.
GRANT {privileges} ON ALL TABLES IN SCHEMA {schema} TO {role}
