-- Grants table privileges on named tables.
GRANT {privileges} ON TABLE {tables} TO {role}
