-- Takes back the right to draw values from named sequences.
REVOKE USAGE, SELECT ON SEQUENCE {sequences} FROM {role}
