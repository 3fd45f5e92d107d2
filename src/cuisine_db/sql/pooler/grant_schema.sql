-- Lets the pooler's auth role reach the lookup function's schema (and nothing else in it).
GRANT USAGE ON SCHEMA {schema} TO {role}
