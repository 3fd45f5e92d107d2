-- every database's oid and name
SELECT oid::text AS oid, datname AS name FROM pg_database ORDER BY oid
