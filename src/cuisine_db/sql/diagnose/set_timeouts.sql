-- Sets this session's statement_timeout and lock_timeout (a diagnostic must not hang on a sick server or a locked table); returns both.
SELECT set_config('statement_timeout', %(statement_timeout)s, false) AS statement_timeout,
       set_config('lock_timeout', %(lock_timeout)s, false) AS lock_timeout
