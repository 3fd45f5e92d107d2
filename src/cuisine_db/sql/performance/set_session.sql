-- Sets a parameter for the rest of the session (statement_timeout, lock_timeout); returns the value.
SELECT set_config(%(name)s, %(value)s, false)
