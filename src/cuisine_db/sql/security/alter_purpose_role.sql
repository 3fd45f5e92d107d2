-- Brings an existing purpose role back to exactly the attributes its purpose needs.
ALTER ROLE {name} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS {replication} CONNECTION LIMIT {limit}
