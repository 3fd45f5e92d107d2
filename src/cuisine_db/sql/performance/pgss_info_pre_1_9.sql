-- pg_stat_statements before 1.9 keeps no reset time or eviction count: both unknown.
SELECT NULL::timestamptz AS reset_at, NULL::bigint AS evicted
