-- Whether the server archives WAL (archive_mode) and with which command: the new cluster archives into its own area.
SELECT current_setting('archive_mode') AS archive_mode, current_setting('archive_command') AS archive_command
