-- Rows inserted into each table of the current database since it was created, by the server's own counters
-- (schema, table, inserted).
SELECT schemaname, relname, n_tup_ins FROM pg_stat_user_tables
