-- Each role's privileges on each table and where they come from: owner, direct grant, a role it inherits, PUBLIC; superusers and pg_read_all_data/pg_write_all_data members once with table '*'.
WITH roles AS (
    SELECT oid, rolname, rolsuper
    FROM pg_roles
    WHERE (%(name)s::text IS NULL AND rolcanlogin AND rolname NOT LIKE 'pg\_%%') OR rolname = %(name)s::text
), relations AS (
    SELECT c.oid, n.nspname, c.relname, c.relowner, coalesce(c.relacl, acldefault('r', c.relowner)) AS acl
    FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_toast%%' AND n.nspname NOT LIKE 'pg\_temp%%'
), grants AS (
    SELECT rel.oid AS relid, rel.nspname, rel.relname, rel.relowner, a.grantee, a.privilege_type
    FROM relations AS rel, aclexplode(rel.acl) AS a
)
SELECT r.rolname::text AS role, g.nspname::text AS schema, g.relname::text AS table_name,
       CASE WHEN g.grantee = 0 THEN 'PUBLIC'
            WHEN g.grantee = r.oid AND g.relowner = r.oid THEN 'owner'
            WHEN g.grantee = r.oid THEN 'direct'
            ELSE 'member of ' || pg_get_userbyid(g.grantee) END AS via,
       string_agg(g.privilege_type, ',' ORDER BY g.privilege_type) AS privileges
FROM roles AS r
JOIN grants AS g ON CASE WHEN g.grantee IN (0, r.oid) THEN true ELSE pg_has_role(r.oid, g.grantee, 'USAGE') END
WHERE NOT r.rolsuper
GROUP BY r.rolname, g.nspname, g.relname, 4
UNION ALL
SELECT r.rolname::text, '*', '*', 'superuser', 'ALL' FROM roles AS r WHERE r.rolsuper
UNION ALL
SELECT r.rolname::text, '*', '*', 'member of ' || p.rolname,
       CASE p.rolname WHEN 'pg_read_all_data' THEN 'SELECT' ELSE 'INSERT,UPDATE,DELETE' END
FROM roles AS r
JOIN pg_roles AS p ON p.rolname IN ('pg_read_all_data', 'pg_write_all_data')
WHERE NOT r.rolsuper AND pg_has_role(r.oid, p.oid, 'USAGE')
ORDER BY 1, 2, 3, 4
