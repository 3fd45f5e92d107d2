-- How the cluster was initialised: encoding and locale of template0, and whether data checksums are on.
SELECT pg_encoding_to_char(encoding) AS encoding, datcollate AS collate, datctype AS ctype,
       current_setting('data_checksums') AS checksums
FROM pg_database WHERE datname = 'template0'
