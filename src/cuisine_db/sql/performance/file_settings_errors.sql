-- Lines of the configuration files that could not be applied (a bad value, or a restart-only parameter changed since start).
SELECT name, setting, sourcefile, sourceline, error
FROM pg_file_settings
WHERE error IS NOT NULL
ORDER BY sourcefile, sourceline
