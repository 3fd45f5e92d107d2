-- Server parameters not at their built-in default (every one when all is true): value, unit, source and the file line that set it, context, pending restart, default, description.
SELECT name, setting, unit, vartype, source, sourcefile, sourceline, context, pending_restart, boot_val,
       short_desc, category
FROM pg_settings
WHERE %(all)s OR source NOT IN ('default', 'override', 'client', 'session')
ORDER BY category, name
