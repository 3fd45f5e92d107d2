-- migrate:up
-- expect: error
-- rules: cannot-run-in-transaction
-- runtime: yes
-- why: DROP INDEX CONCURRENTLY cannot run in a transaction block
DROP INDEX CONCURRENTLY orders_account_idx;

-- migrate:down
