-- Installs pg_stat_statements in the current database (preloaded by the clusters the tool creates).
CREATE EXTENSION IF NOT EXISTS pg_stat_statements
