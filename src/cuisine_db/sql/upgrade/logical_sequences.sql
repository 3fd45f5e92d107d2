-- Every sequence of the user schemas with the value it last handed out (name as regclass text, last_value; null when never used).
SELECT format('%I.%I', schemaname, sequencename) AS name, last_value
FROM pg_sequences
WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1
