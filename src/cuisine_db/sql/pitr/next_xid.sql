-- the next transaction ID the server will assign (it moves only when a transaction writes)
SELECT pg_snapshot_xmax(pg_current_snapshot())::text
