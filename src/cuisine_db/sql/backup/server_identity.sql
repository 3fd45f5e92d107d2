-- The server's version and the database's encoding and locale: one row (version, version_num, encoding, collate, ctype).
SELECT split_part(current_setting('server_version'), ' ', 1) AS version,
       current_setting('server_version_num')::int AS version_num,
       pg_encoding_to_char(d.encoding) AS encoding,
       d.datcollate AS collate,
       d.datctype AS ctype
FROM pg_database d
WHERE d.datname = current_database()
