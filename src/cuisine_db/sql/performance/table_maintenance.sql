-- One table's last (auto)vacuum and (auto)analyze, their counts, live and dead rows and changes since ANALYZE, with the time now.
SELECT last_vacuum, last_autovacuum, last_analyze, last_autoanalyze,
       vacuum_count + autovacuum_count AS vacuums, analyze_count + autoanalyze_count AS analyzes,
       n_live_tup AS live_rows, n_dead_tup AS dead_rows, n_mod_since_analyze AS changed_since_analyze, now() AS now
FROM pg_stat_all_tables
WHERE relid = %(oid)s
