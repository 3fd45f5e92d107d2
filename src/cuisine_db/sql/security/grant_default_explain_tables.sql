-- Gives the explain role the same table privileges on tables a creator makes in a schema from now on.
ALTER DEFAULT PRIVILEGES FOR ROLE {creator} IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}
