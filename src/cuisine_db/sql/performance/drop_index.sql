-- Drops an index without blocking reads or writes of its table; cannot run inside a transaction.
DROP INDEX CONCURRENTLY IF EXISTS {index}
