-- The moment before which rows count as old (the server's clock less the age), and whether the server is a standby: one row (cutoff, standby).
SELECT now() - make_interval(secs => %(seconds)s) AS cutoff, pg_is_in_recovery() AS standby
