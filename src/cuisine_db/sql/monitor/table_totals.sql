-- Every ordinary table's total size (heap, indexes, TOAST) and row estimate, for the growth snapshots; a table under an ACCESS EXCLUSIVE lock is not opened (that would wait) and keeps the size pg_class last recorded.
WITH locked AS (
    SELECT DISTINCT l.relation
    FROM pg_locks AS l
    WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
)
SELECT n.nspname AS schema,
       c.relname AS name,
       CASE WHEN c.oid IN (SELECT relation FROM locked) OR c.reltoastrelid IN (SELECT relation FROM locked)
                 OR EXISTS (SELECT 1 FROM pg_index AS i WHERE i.indrelid = c.oid
                            AND i.indexrelid IN (SELECT relation FROM locked))
            THEN c.relpages::bigint * current_setting('block_size')::int
            ELSE pg_total_relation_size(c.oid) END AS total_bytes,
       greatest(c.reltuples, 0)::bigint AS row_estimate
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%'
