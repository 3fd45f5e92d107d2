-- Sets how long an integrity check waits for a lock (a migration holding one) before reporting the relation unchecked.
SELECT set_config('lock_timeout', %(timeout)s, false)
