-- The named server settings this role may see, as name and value.
SELECT name, setting FROM pg_settings WHERE name = ANY(%(names)s::text[])
