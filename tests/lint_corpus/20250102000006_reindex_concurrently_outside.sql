-- migrate:up transaction:false
-- expect: ok
-- rules: none
-- runtime: yes
-- why: the fixed version: REINDEX CONCURRENTLY (12+) outside a transaction blocks no writes
REINDEX INDEX CONCURRENTLY orders_account_idx;

-- migrate:down
