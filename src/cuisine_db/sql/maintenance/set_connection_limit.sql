-- Sets a role's connection limit (0 blocks new sessions, -1 means no limit); returns nothing.
ALTER ROLE {role} CONNECTION LIMIT {limit}
