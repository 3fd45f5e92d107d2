-- migrate:up transaction:false
-- expect: ok
-- rules: none
-- why: transaction:false: the ADD commits before VALIDATE starts, so its lock is gone
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;

-- migrate:down
