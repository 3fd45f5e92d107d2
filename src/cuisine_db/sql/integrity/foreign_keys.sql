-- Foreign keys (validated or not, one row per constraint, not the copies on partitions) with their tables,
-- column names in key order, and whether an index on the child leads with the key's columns.
SELECT quote_ident(c.conname) AS name,
       cn.nspname AS child_schema, cc.relname AS child_table,
       pn.nspname AS parent_schema, pc.relname AS parent_table,
       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k (attnum, ord)
             JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord) AS child_columns,
       ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k (attnum, ord)
             JOIN pg_attribute AS a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.ord) AS parent_columns,
       c.confmatchtype = 'f' AS match_full,
       EXISTS (SELECT FROM pg_index AS i
               WHERE i.indrelid = c.conrelid AND i.indisvalid AND i.indpred IS NULL
                 AND (i.indkey::int2[])[0:array_length(c.conkey, 1) - 1] = c.conkey) AS child_indexed,
       pg_relation_size(c.conrelid) / current_setting('block_size')::int8 AS child_pages
FROM pg_constraint AS c
JOIN pg_class AS cc ON cc.oid = c.conrelid
JOIN pg_namespace AS cn ON cn.oid = cc.relnamespace
JOIN pg_class AS pc ON pc.oid = c.confrelid
JOIN pg_namespace AS pn ON pn.oid = pc.relnamespace
WHERE c.contype = 'f'
  AND c.conparentid = 0
  AND (%(tables)s::int8[] IS NULL OR c.conrelid::int8 = ANY (%(tables)s::int8[])
       OR c.confrelid::int8 = ANY (%(tables)s::int8[]))
ORDER BY cn.nspname, cc.relname, c.conname
