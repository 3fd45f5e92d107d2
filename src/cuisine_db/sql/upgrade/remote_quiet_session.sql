-- Keeps the next statements (a subscription whose connection string holds a password) out of the server log and pg_stat_statements; superusers only.
SELECT set_config('log_statement', 'none', false), set_config('log_min_error_statement', 'panic', false),
       set_config('log_min_duration_statement', '-1', false), set_config('pg_stat_statements.track_utility', 'off', false)
