-- migrate:up
-- expect: error
-- rules: cannot-run-in-transaction
-- runtime: yes
-- why: DETACH PARTITION ... CONCURRENTLY cannot run in a transaction block (squawk misses it)
ALTER TABLE events DETACH PARTITION events_2024 CONCURRENTLY;

-- migrate:down
