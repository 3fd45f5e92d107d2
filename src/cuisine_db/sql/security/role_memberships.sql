-- The roles a role belongs to (direction 'member of') and the roles that belong to it (direction 'has member').
SELECT 'member of' AS direction, g.rolname AS role
FROM pg_auth_members AS m
JOIN pg_roles AS g ON g.oid = m.roleid
JOIN pg_roles AS r ON r.oid = m.member
WHERE r.rolname = %(name)s
UNION ALL
SELECT 'has member', r.rolname
FROM pg_auth_members AS m
JOIN pg_roles AS g ON g.oid = m.roleid
JOIN pg_roles AS r ON r.oid = m.member
WHERE g.rolname = %(name)s
ORDER BY 1, 2
