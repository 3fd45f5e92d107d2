-- migrate:up
-- expect: warning
-- rules: rewrites-under-exclusive-lock
-- why: CLUSTER rewrites the table under ACCESS EXCLUSIVE
CLUSTER orders USING orders_pkey;

-- migrate:down
