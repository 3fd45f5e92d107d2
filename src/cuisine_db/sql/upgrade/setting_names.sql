-- Every setting name this server knows.
SELECT name FROM pg_settings ORDER BY name
