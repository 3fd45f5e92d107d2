-- What the server's statistics have counted for one table since they began: one row (n_tup_ins, n_tup_del), none if the table has gone.
SELECT n_tup_ins, n_tup_del FROM pg_stat_all_tables WHERE relid = %(oid)s
