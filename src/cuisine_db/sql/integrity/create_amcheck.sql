-- Installs amcheck where pg_amcheck --install-missing would (pg_catalog), so both tools share one installation.
CREATE EXTENSION IF NOT EXISTS amcheck WITH SCHEMA pg_catalog
