-- Installs pg_prewarm (reads relation forks through shared buffers, so checksums are verified) in pg_catalog.
CREATE EXTENSION IF NOT EXISTS pg_prewarm WITH SCHEMA pg_catalog
