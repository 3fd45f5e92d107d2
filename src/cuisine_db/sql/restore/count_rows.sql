-- The number of rows in one table: one row (count).
SELECT count(*) FROM {table}
