-- The new cluster's archive_timeout, the old one's.
ALTER SYSTEM SET archive_timeout = {timeout}
