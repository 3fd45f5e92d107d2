-- Login roles with their connection limit, password expiry and superuser flag.
SELECT rolname::text AS role, rolconnlimit AS connection_limit, rolvaliduntil AS valid_until,
       rolsuper AS superuser, oid = 10 AS bootstrap
FROM pg_roles
WHERE rolcanlogin AND rolname NOT LIKE 'pg\_%%'
ORDER BY 1
