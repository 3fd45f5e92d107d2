-- Makes the server notice within a second when this runner dies mid-statement, so it rolls back and frees the lock.
SELECT set_config('client_connection_check_interval', '1s', false)
