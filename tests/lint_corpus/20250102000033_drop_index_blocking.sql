-- migrate:up
-- expect: warning
-- rules: drop-index-without-concurrently
-- why: DROP INDEX takes ACCESS EXCLUSIVE on the table: short, but every query queues behind it
DROP INDEX orders_account_idx;

-- migrate:down
