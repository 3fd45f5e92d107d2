-- Schemas in which every role (PUBLIC) may create objects.
SELECT n.nspname::text AS schema
FROM pg_namespace AS n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) AS a
WHERE a.grantee = 0 AND a.privilege_type = 'CREATE'
  AND n.nspname NOT LIKE 'pg\_%%' AND n.nspname <> 'information_schema'
ORDER BY 1
