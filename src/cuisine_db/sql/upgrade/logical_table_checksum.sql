-- One table's row count and a checksum of its rows that ignores their physical order (rows, checksum).
SELECT count(*) AS rows, coalesce(md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))), '') AS checksum
FROM {table} AS t
