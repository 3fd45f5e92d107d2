-- The rules of pg_hba.conf as the server reads the file now (file_name exists from PostgreSQL 15 on).
SELECT line_number, type, coalesce(database, ARRAY[]::text[]) AS database,
       coalesce(user_name, ARRAY[]::text[]) AS user_name, address, netmask, auth_method, error,
       to_jsonb(r) ->> 'file_name' AS file_name
FROM pg_hba_file_rules AS r
ORDER BY line_number
