-- migrate:up
-- expect: warning
-- rules: add-column-rewrites-table
-- why: a STORED generated column is computed for every row: a rewrite
ALTER TABLE orders ADD COLUMN total_cents bigint GENERATED ALWAYS AS (total * 100) STORED;

-- migrate:down
