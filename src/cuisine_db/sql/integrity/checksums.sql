-- Whether data checksums are on, and the checksum failures counted for this database and for the shared catalogs.
SELECT current_setting('data_checksums') = 'on' AS enabled,
       coalesce(sum(checksum_failures), 0)::int8 AS failures,
       max(checksum_last_failure) AS last_failure
FROM pg_stat_database
WHERE datid = 0 OR datname = current_database()
