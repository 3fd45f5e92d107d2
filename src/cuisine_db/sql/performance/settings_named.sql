-- The named server parameters as pg_settings describes them (type, unit, range, enum values, context, source).
SELECT name, setting, unit, vartype, min_val, max_val, enumvals, context, source, boot_val, reset_val,
       pending_restart, short_desc
FROM pg_settings
WHERE name = ANY(%(names)s)
