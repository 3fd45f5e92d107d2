-- Roles whose future tables in a schema should follow default privileges: the current user and the owners of its tables we may act for.
SELECT current_user::text AS creator
UNION
SELECT DISTINCT pg_get_userbyid(c.relowner)::text
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND pg_has_role(current_user, c.relowner, 'MEMBER')
ORDER BY 1
