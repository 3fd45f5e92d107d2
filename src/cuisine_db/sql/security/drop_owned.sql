-- Revokes a role's privileges (and default privileges) in the current database; run after REASSIGN OWNED.
DROP OWNED BY {name}
