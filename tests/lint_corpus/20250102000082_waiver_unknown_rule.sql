-- migrate:up
-- expect: error
-- rules: waiver-unknown-rule
-- why: a waiver must name a real rule, or a typo would silence nothing and look like it did
-- lint:ignore drop-everything we know what we are doing
ALTER TABLE orders ADD COLUMN coupon text;

-- migrate:down
