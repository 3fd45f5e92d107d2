-- Every extension this server's build can install, with the version CREATE/ALTER EXTENSION ... UPDATE installs.
SELECT name, default_version FROM pg_available_extensions ORDER BY name
