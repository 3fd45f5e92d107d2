-- migrate:up
-- expect: ok
-- rules: none
-- why: the runner already sets lock_timeout and retries: no rule asks for SET lock_timeout (squawk would), and setting it is harmless
SET lock_timeout = '2s';
ALTER TABLE orders ADD COLUMN coupon text;

-- migrate:down
