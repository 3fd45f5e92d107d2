-- What holds back the xmin horizon (vacuum's cleanup and freezing): sessions, prepared transactions, replication slots and standbys' feedback, oldest first.
SELECT kind, name, xid_age, seconds FROM (
    SELECT 'transaction' AS kind,
           format('pid %s (%s@%s, %s)', pid, usename, datname, coalesce(nullif(application_name, ''), 'no application')) AS name,
           greatest(age(backend_xmin), age(backend_xid))::bigint AS xid_age,
           extract(epoch FROM now() - xact_start)::float8 AS seconds
    FROM pg_stat_activity
    WHERE (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL) AND pid <> pg_backend_pid()
    UNION ALL
    SELECT 'prepared transaction', format('gid %L (%s@%s)', gid, owner, database),
           age(transaction)::bigint, extract(epoch FROM now() - prepared)::float8
    FROM pg_prepared_xacts
    UNION ALL
    SELECT 'replication slot', format('slot %s (%s, %s)', slot_name, slot_type, CASE WHEN active THEN 'active' ELSE 'inactive' END),
           greatest(age(xmin), age(catalog_xmin))::bigint, NULL::float8
    FROM pg_replication_slots
    WHERE xmin IS NOT NULL OR catalog_xmin IS NOT NULL
    UNION ALL
    SELECT 'standby feedback', format('standby %s (%s)', application_name, coalesce(host(client_addr), 'local socket')),
           age(backend_xmin)::bigint, NULL::float8
    FROM pg_stat_replication
    WHERE backend_xmin IS NOT NULL
) AS holders
ORDER BY xid_age DESC NULLS LAST
LIMIT 10
