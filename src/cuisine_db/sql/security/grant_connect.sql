-- Lets a role connect to a database (explicitly, so it survives REVOKE CONNECT ... FROM PUBLIC).
GRANT CONNECT ON DATABASE {database} TO {name}
