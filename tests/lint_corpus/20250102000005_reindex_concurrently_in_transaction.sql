-- migrate:up
-- expect: error
-- rules: cannot-run-in-transaction
-- runtime: yes
-- why: REINDEX CONCURRENTLY cannot run in a transaction block (squawk misses it)
REINDEX INDEX CONCURRENTLY orders_account_idx;

-- migrate:down
