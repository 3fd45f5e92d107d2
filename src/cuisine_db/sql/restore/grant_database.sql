-- Grants one privilege on a database (to a role or PUBLIC), optionally with grant option; returns nothing.
GRANT {privilege} ON DATABASE {name} TO {grantee} {option}
