-- Revokes table privileges on named tables.
REVOKE {privileges} ON TABLE {tables} FROM {role}
