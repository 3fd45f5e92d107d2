-- migrate:up
-- expect: warning
-- rules: constraint-validated-under-lock
-- why: a CHECK added valid scans the table under ACCESS EXCLUSIVE
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0);

-- migrate:down
