-- Makes sequences a creator makes in a schema from now on usable by a role.
ALTER DEFAULT PRIVILEGES FOR ROLE {creator} IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {role}
