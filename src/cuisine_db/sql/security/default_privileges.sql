-- Default privileges: what tables and sequences a creator makes in a schema from now on will grant to whom.
SELECT pg_get_userbyid(d.defaclrole)::text AS creator, coalesce(n.nspname::text, '*') AS schema,
       CASE d.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences' WHEN 'f' THEN 'functions'
                            WHEN 'T' THEN 'types' ELSE 'schemas' END AS kind,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END AS grantee,
       string_agg(a.privilege_type, ',' ORDER BY a.privilege_type) AS privileges
FROM pg_default_acl AS d
LEFT JOIN pg_namespace AS n ON n.oid = d.defaclnamespace
CROSS JOIN LATERAL aclexplode(d.defaclacl) AS a
WHERE %(name)s::text IS NULL OR a.grantee = (SELECT oid FROM pg_roles WHERE rolname = %(name)s::text)
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4
