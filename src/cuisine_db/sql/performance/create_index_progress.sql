-- How far an index build by the given backend has come (phase, blocks, tuples, lockers waited for); no row when none runs.
SELECT phase, blocks_total, blocks_done, tuples_total, tuples_done, lockers_total, lockers_done
FROM pg_stat_progress_create_index
WHERE pid = %(pid)s
