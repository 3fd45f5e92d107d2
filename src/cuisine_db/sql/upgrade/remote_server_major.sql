-- The server's major version (an integer: 14, 18).
SELECT current_setting('server_version_num')::integer / 10000
