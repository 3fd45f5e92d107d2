-- On a primary, commits an empty transaction holding an xid (a heartbeat): the WAL writer flushes its commit record, and the WAL before it, to the replicas; one row (xid, NULL on a standby).
SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE txid_current() END AS xid
