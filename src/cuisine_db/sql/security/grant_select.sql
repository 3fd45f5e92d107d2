-- Lets a role read one table.
GRANT SELECT ON TABLE {table} TO {name}
