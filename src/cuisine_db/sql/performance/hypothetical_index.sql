-- The CREATE INDEX statement handed to hypopg_create_index for a candidate (table and columns through sql.Identifier).
CREATE INDEX ON {table} ({columns})
