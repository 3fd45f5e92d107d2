-- One row when pgaudit is loaded in this server (its parameters exist only then).
SELECT setting FROM pg_settings WHERE name = 'pgaudit.log'
