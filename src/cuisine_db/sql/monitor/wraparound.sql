-- Transaction ID and MultiXact ID age of every database, oldest first, against the 2^31 wraparound limit.
SELECT datname AS database,
       age(datfrozenxid)::bigint AS xid_age,
       mxid_age(datminmxid)::bigint AS mxid_age
FROM pg_database
ORDER BY greatest(age(datfrozenxid), mxid_age(datminmxid)) DESC
