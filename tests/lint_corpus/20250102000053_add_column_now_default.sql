-- migrate:up
-- expect: ok
-- rules: none
-- why: now() is stable: evaluated once and stored in the catalog (11+)
ALTER TABLE orders ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();

-- migrate:down
