-- Databases kept or left by restores of one database: rows (name, bytes, comment, sessions), by name.
SELECT d.datname AS name, pg_database_size(d.oid) AS bytes, shobj_description(d.oid, 'pg_database') AS comment,
       (SELECT count(*) FROM pg_stat_activity AS a WHERE a.datname = d.datname)::int AS sessions
FROM pg_database AS d
WHERE d.datname ~ %(pattern)s
ORDER BY 1
