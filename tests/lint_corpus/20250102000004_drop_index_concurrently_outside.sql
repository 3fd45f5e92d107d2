-- migrate:up transaction:false
-- expect: ok
-- rules: none
-- runtime: yes
-- why: the fixed version, in a transaction:false section
DROP INDEX CONCURRENTLY orders_account_idx;

-- migrate:down
