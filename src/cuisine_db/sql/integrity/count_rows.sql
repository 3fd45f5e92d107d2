-- The number of rows in one table (an index-only scan where the visibility map allows): one row (count).
SELECT count(*) FROM ONLY {table}
