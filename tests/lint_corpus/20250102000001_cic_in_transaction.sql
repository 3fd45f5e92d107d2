-- migrate:up
-- expect: error
-- rules: cannot-run-in-transaction
-- runtime: yes
-- why: CREATE INDEX CONCURRENTLY refuses to run in a transaction block, and the runner wraps this section in one
CREATE INDEX CONCURRENTLY orders_total_idx ON orders (total);

-- migrate:down
