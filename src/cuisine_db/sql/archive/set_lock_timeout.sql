-- Sets lock_timeout for the rest of this transaction: one row (set_config).
SELECT set_config('lock_timeout', %(value)s, true)
