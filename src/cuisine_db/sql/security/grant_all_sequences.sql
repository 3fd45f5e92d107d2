-- Lets a role draw values from every sequence of a schema (serial columns, for an explained INSERT).
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}
