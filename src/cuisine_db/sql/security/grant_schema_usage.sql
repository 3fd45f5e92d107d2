-- Lets a role look up objects in a schema (needed before any table privilege there is usable).
GRANT USAGE ON SCHEMA {schema} TO {role}
