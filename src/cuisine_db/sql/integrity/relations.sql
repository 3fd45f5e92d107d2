-- Every relation with storage in the database (catalogs and TOAST included), its kind, access method, file path,
-- size in pages, and the table it belongs to (an index's table, a TOAST table's owner, a sequence's owner).
WITH rel AS (
    SELECT c.oid, c.relnamespace, c.relname, c.relkind, c.relam, c.relpersistence, c.relispopulated,
           CASE WHEN c.relkind = 'i' THEN i.indrelid ELSE c.oid END AS base,
           coalesce(i.indisvalid, true) AS valid,
           coalesce(i.indisready, true) AS ready
    FROM pg_class AS c
    LEFT JOIN pg_index AS i ON i.indexrelid = c.oid
    WHERE c.relkind IN ('r', 'm', 't', 'i', 'S')
      AND c.relpersistence <> 't'
)
SELECT rel.oid::int8 AS oid,
       n.nspname AS schema,
       rel.relname AS name,
       quote_ident(n.nspname) || '.' || quote_ident(rel.relname) AS display,
       rel.relkind::text AS kind,
       coalesce(am.amname, '') AS access_method,
       rel.relpersistence::text AS persistence,
       rel.relispopulated AS populated,
       rel.valid,
       rel.ready,
       pg_relation_filepath(rel.oid) AS filepath,
       pg_relation_size(rel.oid) / current_setting('block_size')::int8 AS pages,
       owner.oid::int8 AS table_oid,
       owner_ns.nspname AS table_schema,
       owner.relname AS table_name,
       CASE WHEN owner_ns.nspname = 'public' THEN quote_ident(owner.relname)
            ELSE quote_ident(owner_ns.nspname) || '.' || quote_ident(owner.relname) END AS table_arg
FROM rel
JOIN pg_namespace AS n ON n.oid = rel.relnamespace
LEFT JOIN pg_am AS am ON am.oid = rel.relam
LEFT JOIN pg_class AS toast_owner ON toast_owner.reltoastrelid = rel.base
LEFT JOIN pg_depend AS seq_owner
       ON rel.relkind = 'S' AND seq_owner.classid = 'pg_class'::regclass AND seq_owner.objid = rel.oid
      AND seq_owner.refclassid = 'pg_class'::regclass AND seq_owner.deptype IN ('a', 'i')
JOIN pg_class AS owner ON owner.oid = coalesce(toast_owner.oid, seq_owner.refobjid, rel.base)
JOIN pg_namespace AS owner_ns ON owner_ns.oid = owner.relnamespace
ORDER BY rel.oid
