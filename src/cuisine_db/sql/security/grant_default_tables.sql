-- Makes tables a creator makes in a schema from now on carry the same privileges.
ALTER DEFAULT PRIVILEGES FOR ROLE {creator} IN SCHEMA {schema} GRANT {privileges} ON TABLES TO {role}
