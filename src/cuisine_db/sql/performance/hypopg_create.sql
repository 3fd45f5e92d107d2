-- Creates a hypothetical index (visible to this session's planner only) from a CREATE INDEX statement; returns its oid and name.
SELECT indexrelid AS index_oid, indexname AS index_name FROM {schema}.hypopg_create_index(%(statement)s)
