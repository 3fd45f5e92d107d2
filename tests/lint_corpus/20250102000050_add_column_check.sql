-- migrate:up
-- expect: warning
-- rules: constraint-validated-under-lock
-- why: CHECK inside ADD COLUMN is verified against every row under ACCESS EXCLUSIVE
ALTER TABLE orders ADD COLUMN quantity integer CHECK (quantity > 0);

-- migrate:down
