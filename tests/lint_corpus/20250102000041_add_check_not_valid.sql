-- migrate:up
-- expect: ok
-- rules: none
-- why: NOT VALID: catalog only
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0) NOT VALID;

-- migrate:down
