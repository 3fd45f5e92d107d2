-- migrate:up
-- expect: warning
-- rules: drops-data
-- why: DROP TABLE loses its data
DROP TABLE events_2025;

-- migrate:down
