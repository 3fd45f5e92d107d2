-- Sessions that wait for a lock the given pid holds (or is queued ahead for).
SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND %(pid)s = ANY(pg_blocking_pids(pid)) ORDER BY pid
