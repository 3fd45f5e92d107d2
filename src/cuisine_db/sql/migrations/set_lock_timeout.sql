-- Sets lock_timeout for the transaction (local) or the session.
SELECT set_config('lock_timeout', %(value)s, %(local)s)
