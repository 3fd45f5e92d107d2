-- Every index on user tables: table, key and INCLUDE column numbers, operator classes, the constraint it backs, validity, scans, the time of the last scan (PostgreSQL 16+; NULL before), size from relpages.
SELECT i.indexrelid AS index_oid, i.indrelid AS table_oid, n.nspname AS schema, t.relname AS table_name,
       c.relname AS index_name, am.amname AS method, i.indkey::int2[] AS keys, i.indnkeyatts::int AS key_count,
       i.indclass::oid[] AS opclasses, i.indcollation::oid[] AS collations, i.indoption::int2[] AS options,
       pg_get_expr(i.indexprs, i.indrelid) AS expressions, pg_get_expr(i.indpred, i.indrelid) AS predicate,
       i.indisunique AS is_unique, i.indisprimary AS is_primary, coalesce(con.contype::text, '') AS constraint_type,
       i.indisvalid AS is_valid, i.indisreplident AS is_replica_identity, c.relispartition AS is_partition,
       coalesce(pg_stat_get_numscans(i.indexrelid), 0) AS scans, {last_scan} AS last_scan,
       c.relpages::int8 * current_setting('block_size')::int8 AS bytes, greatest(t.reltuples, 0)::float8 AS table_rows
FROM pg_index AS i
JOIN pg_class AS c ON c.oid = i.indexrelid
JOIN pg_class AS t ON t.oid = i.indrelid
JOIN pg_namespace AS n ON n.oid = t.relnamespace
JOIN pg_am AS am ON am.oid = c.relam
LEFT JOIN pg_constraint AS con
       ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
WHERE c.relkind = 'i'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
  AND (%(table)s::oid IS NULL OR i.indrelid = %(table)s::oid)
