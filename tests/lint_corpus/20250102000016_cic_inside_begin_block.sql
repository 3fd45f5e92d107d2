-- migrate:up transaction:false
-- expect: error
-- rules: cannot-run-in-transaction
-- runtime: yes
-- why: transaction:false, but the file opens its own BEGIN around CREATE INDEX CONCURRENTLY, which then fails
BEGIN;
CREATE INDEX CONCURRENTLY orders_total_idx ON orders (total);
COMMIT;

-- migrate:down
