-- The current database's size in bytes: what the new cluster holds after the initial copy (without bloat).
SELECT pg_database_size(current_database())::bigint
