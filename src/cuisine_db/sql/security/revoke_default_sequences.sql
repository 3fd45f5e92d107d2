-- Stops future sequences of a creator in a schema from being usable by a role.
ALTER DEFAULT PRIVILEGES FOR ROLE {creator} IN SCHEMA {schema} REVOKE USAGE, SELECT ON SEQUENCES FROM {role}
