-- Drops a role.
DROP ROLE {name}
