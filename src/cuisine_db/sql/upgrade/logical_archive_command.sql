-- The new cluster's archive_command: this installation's cuisine-db wal push for the environment.
ALTER SYSTEM SET archive_command = {command}
