-- migrate:up transaction:false
-- expect: ok
-- rules: none
-- runtime: yes
-- why: the fixed version: DETACH ... CONCURRENTLY (14+) in a transaction:false section
ALTER TABLE events DETACH PARTITION events_2024 CONCURRENTLY;

-- migrate:down
