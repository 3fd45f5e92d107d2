-- Sets this session's statement_timeout (a diagnostic must not hang on a sick server); returns the new value.
SELECT set_config('statement_timeout', %(timeout)s, false)
