-- Rows the server has counted as deleted from one table since its statistics began: one row (n_tup_del), none if the table has gone.
SELECT n_tup_del FROM pg_stat_all_tables WHERE relid = %(oid)s
