-- The databases pg_upgrade carries over (those that accept connections), by name.
SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname
