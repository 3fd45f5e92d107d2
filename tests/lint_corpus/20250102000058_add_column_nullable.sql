-- migrate:up
-- expect: ok
-- rules: none
-- why: a nullable column without default is catalog only
ALTER TABLE orders ADD COLUMN coupon text;

-- migrate:down
