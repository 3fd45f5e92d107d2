-- Locks held and awaited, by database (the lock's own, else its session's; '' for cluster-wide ones), mode and whether granted; every mode of every database that accepts connections appears, at zero when none.
WITH modes(mode) AS (
    VALUES ('AccessShareLock'), ('RowShareLock'), ('RowExclusiveLock'), ('ShareUpdateExclusiveLock'),
           ('ShareLock'), ('ShareRowExclusiveLock'), ('ExclusiveLock'), ('AccessExclusiveLock')
), held AS (
    SELECT coalesce(d.datname, a.datname, '') AS database, l.mode, l.granted, count(*) AS locks
    FROM pg_locks AS l
    LEFT JOIN pg_database AS d ON d.oid = l.database
    LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
    WHERE l.pid IS DISTINCT FROM pg_backend_pid()
    GROUP BY 1, 2, 3
), grid AS (
    SELECT d.datname AS database, m.mode, g.granted
    FROM pg_database AS d, modes AS m, (VALUES (true), (false)) AS g(granted)
    WHERE d.datallowconn
)
SELECT coalesce(grid.database, held.database) AS database,
       coalesce(grid.mode, held.mode) AS mode,
       coalesce(grid.granted, held.granted) AS granted,
       coalesce(held.locks, 0)::bigint AS locks
FROM grid
FULL JOIN held USING (database, mode, granted)
ORDER BY 1, 2, 3
