-- migrate:up
-- expect: ok
-- rules: none
-- why: numeric(10,2) to numeric(14,2): a larger precision, same scale, is free
ALTER TABLE accounts ALTER COLUMN balance TYPE numeric(14,2);

-- migrate:down
