-- Whether the server archives WAL (archive_mode), which the new cluster's new system identifier would collide with.
SELECT current_setting('archive_mode') AS archive_mode
