-- Constraints added NOT VALID and never validated: existing rows were never checked against them.
SELECT quote_ident(n.nspname) || '.' || quote_ident(t.relname) AS table_name, quote_ident(c.conname) AS constraint_name,
       CASE c.contype WHEN 'f' THEN 'foreign key' WHEN 'c' THEN 'check' ELSE c.contype::text END AS kind
FROM pg_constraint AS c
JOIN pg_class AS t ON t.oid = c.conrelid
JOIN pg_namespace AS n ON n.oid = t.relnamespace
WHERE NOT c.convalidated
  AND (%(tables)s::int8[] IS NULL OR c.conrelid::int8 = ANY (%(tables)s::int8[]))
ORDER BY 1, 2
