-- migrate:up
-- expect: warning
-- rules: add-column-rewrites-table
-- why: clock_timestamp() is volatile: a rewrite
ALTER TABLE orders ADD COLUMN seen_at timestamptz DEFAULT clock_timestamp();

-- migrate:down
