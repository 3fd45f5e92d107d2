-- migrate:up
-- expect: warning
-- rules: reindex-without-concurrently
-- why: REINDEX TABLE blocks writes (and reads through each index) for the time of the rebuild
REINDEX TABLE orders;

-- migrate:down
