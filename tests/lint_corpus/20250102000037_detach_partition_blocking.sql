-- migrate:up
-- expect: warning
-- rules: detach-partition-without-concurrently
-- why: DETACH PARTITION without CONCURRENTLY takes ACCESS EXCLUSIVE on the parent
ALTER TABLE events DETACH PARTITION events_2024;

-- migrate:down
