-- migrate:up transaction:false
-- expect: ok
-- rules: none
-- runtime: yes
-- why: the fixed version: transaction:false lets CONCURRENTLY build without blocking writes
CREATE INDEX CONCURRENTLY orders_total_idx ON orders (total);

-- migrate:down
