-- One index's scans so far and its CREATE INDEX statement (NULLs when it no longer exists).
SELECT coalesce(s.idx_scan, 0) AS scans, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index AS i
LEFT JOIN pg_stat_all_indexes AS s ON s.indexrelid = i.indexrelid
WHERE i.indexrelid = %(oid)s
