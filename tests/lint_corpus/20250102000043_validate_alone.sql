-- migrate:up
-- expect: ok
-- rules: none
-- why: VALIDATE CONSTRAINT in its own migration takes SHARE UPDATE EXCLUSIVE: reads and writes go on
ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;

-- migrate:down
