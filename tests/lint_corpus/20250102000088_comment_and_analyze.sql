-- migrate:up
-- expect: ok
-- rules: none
-- why: COMMENT and ANALYZE are cheap and run in a transaction
COMMENT ON TABLE orders IS 'Orders placed by accounts';
ANALYZE orders;

-- migrate:down
