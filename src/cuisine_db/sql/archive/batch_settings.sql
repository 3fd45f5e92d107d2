-- Bounds one delete batch's transaction (lock and statement timeouts) and has it look rows up by primary key (no hash or merge join over the table): returns the settings.
SELECT set_config('lock_timeout', %(lock_timeout)s, true), set_config('statement_timeout', %(statement_timeout)s, true),
       set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)
