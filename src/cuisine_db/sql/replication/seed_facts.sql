-- Whether a primary can feed a replica seeded from its backups: one row (in recovery?, system identifier, version number, archive_mode, archive_command).
SELECT pg_is_in_recovery() AS in_recovery,
       (SELECT system_identifier::text FROM pg_control_system()) AS system_identifier,
       current_setting('server_version_num')::int AS version_num,
       current_setting('archive_mode') AS archive_mode,
       current_setting('archive_command') AS archive_command
