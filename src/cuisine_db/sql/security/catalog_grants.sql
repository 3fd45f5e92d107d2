-- Privileges non-superuser roles (or PUBLIC) hold on catalogs that expose password hashes, sampled column values, user-mapping options or large objects, table-wide or on columns.
WITH sensitive AS (
    SELECT c.oid, c.relname, c.relowner, c.relacl
    FROM pg_class AS c
    WHERE c.relnamespace = 'pg_catalog'::regnamespace
      AND c.relname IN ('pg_authid', 'pg_shadow', 'pg_statistic', 'pg_statistic_ext_data', 'pg_user_mapping',
                        'pg_largeobject', 'pg_subscription')
), granted AS (
    SELECT s.relname, a.grantee, a.privilege_type, NULL::text AS column_name
    FROM sensitive AS s CROSS JOIN LATERAL aclexplode(s.relacl) AS a
    WHERE a.grantee <> s.relowner
    UNION ALL
    SELECT s.relname, a.grantee, a.privilege_type, att.attname::text
    FROM sensitive AS s
    JOIN pg_attribute AS att ON att.attrelid = s.oid AND att.attacl IS NOT NULL
    CROSS JOIN LATERAL aclexplode(att.attacl) AS a
    WHERE a.grantee <> s.relowner
      -- PostgreSQL itself lets every role read pg_subscription's columns but the connection string.
      AND NOT (s.relname = 'pg_subscription' AND a.grantee = 0 AND att.attname <> 'subconninfo')
)
SELECT g.relname::text AS catalog, coalesce(r.rolname::text, 'PUBLIC') AS grantee,
       string_agg(DISTINCT g.privilege_type || coalesce(' (' || g.column_name || ')', ''), ', ') AS privileges
FROM granted AS g
LEFT JOIN pg_roles AS r ON r.oid = g.grantee
WHERE g.grantee = 0 OR NOT r.rolsuper
GROUP BY 1, 2
ORDER BY 1, 2
