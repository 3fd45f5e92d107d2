-- One role's attributes (superuser, login, connection limit, password expiry), or no row when it does not exist.
SELECT rolname AS name, rolsuper AS superuser, rolcanlogin AS login, rolconnlimit AS connection_limit,
       rolvaliduntil AS valid_until, oid = 10 AS bootstrap, rolname = current_user AS is_current
FROM pg_roles
WHERE rolname = %(name)s
