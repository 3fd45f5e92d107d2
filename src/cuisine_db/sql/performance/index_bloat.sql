-- B-tree indexes of at least min_pages pages (no expressions): pages, tuples, fill factor, block size and the average width of their key columns from pg_stats, to estimate bloat.
WITH candidates AS MATERIALIZED (
    SELECT i.indexrelid, i.indrelid, n.nspname AS schema, t.relname AS table_name, c.relname AS index_name,
           c.relpages::int8 AS pages, greatest(c.reltuples, 0)::float8 AS tuples, i.indkey::int2[] AS keys,
           coalesce((SELECT substring(option FROM '^fillfactor=([0-9]+)$')::int
                     FROM unnest(c.reloptions) AS option WHERE option ~ '^fillfactor='), 90) AS fillfactor
    FROM pg_index AS i
    JOIN pg_class AS c ON c.oid = i.indexrelid
    JOIN pg_class AS t ON t.oid = i.indrelid
    JOIN pg_namespace AS n ON n.oid = t.relnamespace
    JOIN pg_am AS am ON am.oid = c.relam
    WHERE am.amname = 'btree' AND i.indexprs IS NULL AND c.relpages >= %(min_pages)s
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
      AND (%(table)s::oid IS NULL OR i.indrelid = %(table)s::oid)
)
SELECT cand.schema, cand.table_name, cand.index_name, cand.pages, cand.tuples, cand.fillfactor,
       current_setting('block_size')::int AS block_size,
       coalesce(sum(s.avg_width * (1 - s.null_frac)), 0)::float8 AS key_width,
       count(s.avg_width) = count(*) AS widths_known
FROM candidates AS cand
CROSS JOIN LATERAL unnest(cand.keys) AS k (attnum)
JOIN pg_attribute AS a ON a.attrelid = cand.indrelid AND a.attnum = k.attnum
LEFT JOIN pg_stats AS s ON s.schemaname = cand.schema AND s.tablename = cand.table_name AND s.attname = a.attname
GROUP BY cand.schema, cand.table_name, cand.index_name, cand.pages, cand.tuples, cand.fillfactor
ORDER BY cand.pages DESC
