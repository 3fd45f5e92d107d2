-- Adds the columns cuisine-db records beyond dbmate's version (idempotent, so dbmate tables upgrade in place);
-- the default stamps the rows dbmate inserts later with their applied time too.
ALTER TABLE schema_migrations
    ADD COLUMN IF NOT EXISTS name text,
    ADD COLUMN IF NOT EXISTS checksum text,
    ADD COLUMN IF NOT EXISTS applied_at timestamptz,
    ADD COLUMN IF NOT EXISTS applied_by text,
    ADD COLUMN IF NOT EXISTS duration_ms integer,
    ADD COLUMN IF NOT EXISTS applied_seq bigint,
    ALTER COLUMN applied_at SET DEFAULT clock_timestamp()
