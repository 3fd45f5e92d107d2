-- One row when the server has the pgaudit extension installed (its package is on the server's machine).
SELECT default_version FROM pg_available_extensions WHERE name = 'pgaudit'
