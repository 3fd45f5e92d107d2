-- Indexes being built right now (CREATE INDEX [CONCURRENTLY] or REINDEX in progress), by oid.
SELECT index_relid AS index_oid FROM pg_stat_progress_create_index WHERE index_relid <> 0
