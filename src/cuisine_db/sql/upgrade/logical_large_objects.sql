-- How many large objects the current database holds: logical replication does not carry them.
SELECT count(*)::bigint FROM pg_largeobject_metadata
