-- Ordinary tables by total size: heap, indexes, TOAST, total, row estimate, dead-tuple share, and the heap's estimated bloat (bytes beyond what its rows need at its fillfactor; null until analyzed). A table under an ACCESS EXCLUSIVE lock (or waiting for one) is not opened, which would wait behind that lock: its sizes come from pg_class and `locked` says so. With %(candidates)s a number (the metrics), only that many tables, those pg_class's page counts put first, have their files measured: a scrape of a 5,000-table database does not stat every file (page counts lag until the next VACUUM/ANALYZE, hence several times more candidates than tables shown); NULL measures every table (db-table-sizes).
WITH locked AS (
    SELECT DISTINCT l.relation
    FROM pg_locks AS l
    WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
),
tables AS (
    SELECT c.oid, n.nspname, c.relname, c.reltoastrelid, c.reltuples, c.reloptions, c.relpages,
           (c.oid IN (SELECT relation FROM locked) OR c.reltoastrelid IN (SELECT relation FROM locked)
            OR EXISTS (SELECT 1 FROM pg_index AS i WHERE i.indrelid = c.oid
                       AND i.indexrelid IN (SELECT relation FROM locked))) AS locked
    FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    LEFT JOIN pg_class AS toast ON toast.oid = c.reltoastrelid
    WHERE c.relkind IN ('r', 'p', 'm')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%%'
    ORDER BY c.relpages::bigint + coalesce(toast.relpages, 0)
             + (SELECT coalesce(sum(ic.relpages), 0) FROM pg_index AS i JOIN pg_class AS ic ON ic.oid = i.indexrelid
                WHERE i.indrelid = c.oid) DESC
    LIMIT %(candidates)s
),
top AS (
    SELECT t.*,
           CASE WHEN t.locked THEN t.relpages::bigint * current_setting('block_size')::int
                ELSE pg_total_relation_size(t.oid) END AS total_bytes
    FROM tables AS t
    ORDER BY total_bytes DESC, t.nspname, t.relname
    LIMIT %(limit)s
),
shape AS (
    SELECT t.*,
           current_setting('block_size')::int AS block_size,
           CASE WHEN t.locked THEN t.relpages::bigint * current_setting('block_size')::int
                ELSE pg_relation_size(t.oid, 'main') END AS main_bytes,
           coalesce((SELECT o.option_value::int FROM pg_options_to_table(t.reloptions) AS o
                     WHERE o.option_name = 'fillfactor'), 100) AS fillfactor,
           w.data_width, w.columns, w.has_nulls
    FROM top AS t
    LEFT JOIN LATERAL (
        SELECT sum((1 - st.null_frac) * st.avg_width) AS data_width,
               count(*) AS columns,
               bool_or(st.null_frac > 0) AS has_nulls
        FROM pg_stats AS st
        WHERE st.schemaname = t.nspname AND st.tablename = t.relname AND NOT st.inherited
    ) AS w ON true
),
estimate AS (
    SELECT s.*,
           -- Tuple header (23 bytes, plus the null bitmap) and data are each padded to 8 bytes; 4 for the line pointer.
           CASE WHEN s.reltuples <= 0 OR s.columns = 0 OR s.data_width IS NULL THEN NULL
                ELSE ceil(s.reltuples * (8 * ceil((23 + CASE WHEN s.has_nulls THEN ceil(s.columns / 8.0) ELSE 0 END) / 8.0)
                                        + 8 * ceil(s.data_width / 8.0) + 4)
                          / ((s.block_size - 24) * s.fillfactor / 100.0))
           END AS expected_pages
    FROM shape AS s
)
SELECT e.nspname AS schema,
       e.relname AS table_name,
       CASE WHEN e.locked THEN e.main_bytes
            ELSE pg_table_size(e.oid) - coalesce(pg_total_relation_size(e.reltoastrelid), 0) END AS heap_bytes,
       CASE WHEN e.locked THEN 0 ELSE pg_indexes_size(e.oid) END AS index_bytes,
       CASE WHEN e.locked THEN 0 ELSE coalesce(pg_total_relation_size(e.reltoastrelid), 0) END AS toast_bytes,
       e.total_bytes,
       greatest(e.reltuples, 0)::bigint AS row_estimate,
       CASE WHEN coalesce(s.n_live_tup, 0) + coalesce(s.n_dead_tup, 0) = 0 THEN 0.0
            ELSE round(s.n_dead_tup::numeric / (s.n_live_tup + s.n_dead_tup), 4)::float8
       END AS dead_share,
       coalesce(s.n_dead_tup, 0) AS dead_rows,
       CASE WHEN e.expected_pages IS NULL THEN NULL
            ELSE greatest(e.main_bytes / e.block_size - e.expected_pages, 0)::bigint * e.block_size
       END AS bloat_bytes,
       CASE WHEN e.expected_pages IS NULL OR e.main_bytes = 0 THEN NULL
            ELSE round(greatest(e.main_bytes / e.block_size - e.expected_pages, 0)::numeric * e.block_size
                       / e.main_bytes, 4)::float8
       END AS bloat_share,
       e.locked
FROM estimate AS e
LEFT JOIN pg_stat_user_tables AS s ON s.relid = e.oid
ORDER BY e.total_bytes DESC, schema, table_name
