-- Indexes left invalid or not ready (a failed CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY), other than
-- ones being built right now, with their table.
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS index_name, quote_ident(tn.nspname) || '.' || quote_ident(t.relname) AS table_name,
       i.indisvalid AS valid, i.indisready AS ready
FROM pg_index AS i
JOIN pg_class AS c ON c.oid = i.indexrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_class AS t ON t.oid = i.indrelid
JOIN pg_namespace AS tn ON tn.oid = t.relnamespace
WHERE (NOT i.indisvalid OR NOT i.indisready)
  AND NOT EXISTS (SELECT FROM pg_stat_progress_create_index AS p WHERE p.index_relid = i.indexrelid)
  AND (%(tables)s::int8[] IS NULL OR i.indrelid::int8 = ANY (%(tables)s::int8[]))
ORDER BY 1
