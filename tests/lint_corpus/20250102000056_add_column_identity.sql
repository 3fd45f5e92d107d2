-- migrate:up
-- expect: warning
-- rules: add-column-rewrites-table
-- why: an identity column numbers every existing row: a rewrite
ALTER TABLE events_2025 ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY;

-- migrate:down
