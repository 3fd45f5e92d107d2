-- Revokes table privileges on every existing table of a schema.
REVOKE {privileges} ON ALL TABLES IN SCHEMA {schema} FROM {role}
