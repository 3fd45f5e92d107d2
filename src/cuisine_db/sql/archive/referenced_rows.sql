-- How many rows older than the cutoff are referenced through one foreign key ({match} pairs child and parent columns): one row (count).
SELECT count(*) FROM {table} AS t
WHERE t.{column} < %(cutoff)s AND EXISTS (SELECT 1 FROM {child} AS c WHERE {match})
