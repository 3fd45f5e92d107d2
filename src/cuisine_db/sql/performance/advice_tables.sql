-- For each (schema, name) pair (schema NULL: found on the search path): the table's oid, schema, name and row estimate, each column, and the column's pg_stats selectivity figures.
SELECT r.position, c.oid AS table_oid, n.nspname AS schema, c.relname AS table_name,
       greatest(c.reltuples, 0)::float8 AS table_rows, a.attname::text AS column_name,
       s.n_distinct::float8 AS n_distinct, s.null_frac::float8 AS null_frac,
       (s.most_common_freqs)[1]::float8 AS top_frequency
FROM unnest(%(schemas)s::text[], %(names)s::text[]) WITH ORDINALITY AS r (schema, name, position)
JOIN pg_class AS c ON c.oid = to_regclass(CASE WHEN r.schema IS NULL THEN quote_ident(r.name)
                                                ELSE quote_ident(r.schema) || '.' || quote_ident(r.name) END)
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_stats AS s ON s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = a.attname
                       AND NOT s.inherited
WHERE c.relkind IN ('r', 'm', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY r.position, a.attnum
