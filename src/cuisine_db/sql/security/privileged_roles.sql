-- Roles holding superuser, CREATEROLE, BYPASSRLS or REPLICATION (predefined pg_ roles left out).
SELECT rolname::text AS role, rolsuper AS superuser, rolcreaterole AS createrole, rolbypassrls AS bypassrls,
       rolreplication AS replication, rolcanlogin AS login, oid = 10 AS bootstrap
FROM pg_roles
WHERE (rolsuper OR rolcreaterole OR rolbypassrls OR rolreplication) AND rolname NOT LIKE 'pg\_%%'
ORDER BY 1
