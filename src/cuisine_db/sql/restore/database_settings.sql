-- A database's own settings (ALTER DATABASE ... SET) and connection limit: rows (setting) as 'name=value', and one row with the limit.
SELECT s.setting, d.datconnlimit AS connlimit
FROM pg_database AS d
LEFT JOIN pg_db_role_setting AS r ON r.setdatabase = d.oid AND r.setrole = 0
LEFT JOIN LATERAL unnest(r.setconfig) AS s(setting) ON true
WHERE d.datname = %(name)s
