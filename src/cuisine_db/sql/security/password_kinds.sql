-- How each role's password is stored (scram, md5, none), from pg_authid: readable by superusers only.
SELECT rolname::text AS role, rolcanlogin AS login,
       CASE WHEN rolpassword IS NULL THEN 'none'
            WHEN rolpassword LIKE 'md5%%' THEN 'md5'
            WHEN rolpassword LIKE 'SCRAM-SHA-256$%%' THEN 'scram'
            ELSE 'plain' END AS kind
FROM pg_authid
WHERE rolname NOT LIKE 'pg\_%%'
ORDER BY 1
