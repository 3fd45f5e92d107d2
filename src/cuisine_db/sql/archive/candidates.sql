-- The rows older than the cutoff: one row (rows, oldest, newest timestamp among them, as text).
SELECT count(*) AS rows, min({column})::text AS oldest, max({column})::text AS newest
FROM {table}
WHERE {column} < %(cutoff)s
