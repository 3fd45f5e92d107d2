-- migrate:up
-- expect: warning
-- rules: validate-in-same-transaction
-- why: NOT VALID then VALIDATE in one transaction: the ADD's lock is held through the scan, so NOT VALID gains nothing
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;

-- migrate:down
