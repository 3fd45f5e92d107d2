-- Gives everything a role owns in the current database to another role.
REASSIGN OWNED BY {name} TO {target}
