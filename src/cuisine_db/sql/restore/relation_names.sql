-- Names of the indexes and constraints of the given tables: rows (name).
SELECT c.relname AS name FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid WHERE i.indrelid = ANY(%(oids)s::oid[])
UNION
SELECT conname FROM pg_constraint WHERE conrelid = ANY(%(oids)s::oid[])
