-- The server's archive_timeout, carried to the logical method's new cluster with archiving.
SELECT current_setting('archive_timeout') AS archive_timeout
