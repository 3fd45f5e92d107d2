-- Creates one of the tool's purpose roles: a login role with nothing beyond what its purpose needs.
CREATE ROLE {name} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS {replication} CONNECTION LIMIT {limit}
