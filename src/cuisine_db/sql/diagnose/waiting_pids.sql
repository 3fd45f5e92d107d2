-- Which of the given pids still wait for a lock.
SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid = ANY(%(pids)s) ORDER BY pid
