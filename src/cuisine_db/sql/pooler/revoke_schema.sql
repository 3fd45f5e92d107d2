-- Nobody but its owner may use the lookup's schema unless granted.
REVOKE ALL ON SCHEMA {schema} FROM PUBLIC
