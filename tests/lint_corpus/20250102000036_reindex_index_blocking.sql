-- migrate:up
-- expect: warning
-- rules: reindex-without-concurrently
-- why: REINDEX INDEX blocks writes for the time of the rebuild
REINDEX INDEX orders_account_idx;

-- migrate:down
