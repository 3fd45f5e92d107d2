-- Prepares a query with $n placeholders under a name, so its generic plan can be explained (before PostgreSQL 16).
PREPARE {name} AS {query}
