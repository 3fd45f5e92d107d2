-- The value the configuration files give a parameter (the last line naming it wins); no row when none does.
SELECT setting FROM pg_file_settings WHERE name = %(name)s ORDER BY seqno DESC LIMIT 1
