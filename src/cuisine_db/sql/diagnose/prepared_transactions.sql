-- Prepared (two-phase) transactions: their gid, owner, database, age and the xid age they hold back.
SELECT gid,
       owner::text AS owner,
       database::text AS database,
       extract(epoch FROM now() - prepared)::float8 AS prepared_seconds,
       age(transaction)::bigint AS xid_age
FROM pg_prepared_xacts
ORDER BY prepared
