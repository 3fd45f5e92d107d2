-- Creates the schema that holds PgBouncer's password lookup, owned by the connecting (super)user.
CREATE SCHEMA IF NOT EXISTS {schema}
