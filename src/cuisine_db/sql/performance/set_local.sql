-- Sets a parameter for the current transaction only (statement_timeout, lock_timeout, plan_cache_mode); returns the value.
SELECT set_config(%(name)s, %(value)s, true)
