-- Builds an index without blocking writes (names through sql.Identifier); cannot run inside a transaction.
CREATE INDEX CONCURRENTLY {name} ON {table} ({columns})
