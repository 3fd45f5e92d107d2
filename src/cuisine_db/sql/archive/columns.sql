-- A table's columns in order: name, type as written (format_type), the base type's name, whether it is generated (and so never copied).
SELECT a.attname::text AS name,
       format_type(a.atttypid, a.atttypmod) AS type,
       t.typname::text AS base_type,
       a.attgenerated <> '' AS generated
FROM pg_attribute AS a
JOIN pg_type AS t ON t.oid = a.atttypid
WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
