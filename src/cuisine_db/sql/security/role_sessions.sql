-- How many sessions are connected as a role right now.
SELECT count(*) AS sessions FROM pg_stat_activity WHERE usename = %(name)s
