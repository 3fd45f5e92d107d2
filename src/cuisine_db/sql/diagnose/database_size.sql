-- The current database's name and size in bytes.
SELECT current_database() AS database, pg_database_size(current_database()) AS bytes
