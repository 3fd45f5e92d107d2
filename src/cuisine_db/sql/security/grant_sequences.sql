-- Lets a role draw values from named sequences (serial columns, for INSERT).
GRANT USAGE, SELECT ON SEQUENCE {sequences} TO {role}
