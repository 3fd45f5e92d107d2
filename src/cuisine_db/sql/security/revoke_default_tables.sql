-- Stops future tables of a creator in a schema from carrying these privileges.
ALTER DEFAULT PRIVILEGES FOR ROLE {creator} IN SCHEMA {schema} REVOKE {privileges} ON TABLES FROM {role}
