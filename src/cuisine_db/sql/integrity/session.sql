-- Prepares a checking session: how long to wait for a lock, no parallel workers (a check uses exactly the
-- connections it was given), and room for the foreign-key checks' hash tables.
SELECT set_config('lock_timeout', %(lock_timeout)s, false),
       set_config('max_parallel_workers_per_gather', '0', false),
       set_config('work_mem', %(work_mem)s, false)
