-- archive_mode as the configuration files set it, the last one read winning (the private recovery server overrides
-- it on its command line, so the row carries "setting could not be applied" there)
SELECT setting FROM pg_file_settings WHERE name = 'archive_mode' ORDER BY seqno DESC LIMIT 1
