-- Creates dbmate's schema_migrations table when it is missing (dbmate-compatible: version is the key).
CREATE TABLE IF NOT EXISTS schema_migrations (version varchar(128) PRIMARY KEY)
