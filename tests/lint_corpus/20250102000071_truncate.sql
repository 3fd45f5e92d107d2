-- migrate:up
-- expect: warning
-- rules: drops-data
-- why: TRUNCATE empties the named table
TRUNCATE orders;

-- migrate:down
