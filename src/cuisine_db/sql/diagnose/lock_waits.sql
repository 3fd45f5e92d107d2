-- For each lock a session waits for: what it is, the mode wanted, for how long, and per blocking pid the mode that blocker holds on it (none: it waits ahead in the queue).
SELECT w.pid AS waiter,
       blocker,
       w.locktype,
       w.mode AS wanted_mode,
       CASE w.locktype
           WHEN 'relation' THEN 'relation ' || w.relation::regclass::text
           WHEN 'extend' THEN 'extension of relation ' || w.relation::regclass::text
           WHEN 'page' THEN format('page %s of %s', w.page, w.relation::regclass)
           WHEN 'tuple' THEN format('row (%s,%s) of %s', w.page, w.tuple, w.relation::regclass)
           WHEN 'transactionid' THEN 'transaction ' || w.transactionid::text
           WHEN 'virtualxid' THEN 'virtual transaction ' || w.virtualxid
           WHEN 'advisory' THEN 'advisory lock ' || CASE WHEN w.objsubid = 1
               THEN ((w.classid::bigint << 32) | w.objid::bigint)::text
               ELSE format('(%s, %s)', w.classid, w.objid) END
           WHEN 'object' THEN 'object ' || coalesce(pg_describe_object(w.classid, w.objid, w.objsubid),
                                                    format('%s/%s', w.classid, w.objid))
           ELSE w.locktype
       END AS target,
       extract(epoch FROM now() - w.waitstart)::float8 AS wait_seconds,
       held.modes AS held_modes
FROM pg_locks AS w
CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocker
LEFT JOIN LATERAL (
    SELECT string_agg(h.mode, ', ' ORDER BY h.mode) AS modes
    FROM pg_locks AS h
    WHERE h.granted
      AND (h.pid = blocker OR (blocker = 0 AND h.pid IS NULL))
      AND h.locktype = w.locktype
      AND h.database IS NOT DISTINCT FROM w.database
      AND h.relation IS NOT DISTINCT FROM w.relation
      AND h.page IS NOT DISTINCT FROM w.page
      AND h.tuple IS NOT DISTINCT FROM w.tuple
      AND h.virtualxid IS NOT DISTINCT FROM w.virtualxid
      AND h.transactionid IS NOT DISTINCT FROM w.transactionid
      AND h.classid IS NOT DISTINCT FROM w.classid
      AND h.objid IS NOT DISTINCT FROM w.objid
      AND h.objsubid IS NOT DISTINCT FROM w.objsubid
) AS held ON true
WHERE NOT w.granted AND w.pid IS NOT NULL
ORDER BY w.pid, blocker
