-- migrate:up
-- expect: warning
-- rules: drops-data
-- why: DROP COLUMN loses its data
ALTER TABLE orders DROP COLUMN note;

-- migrate:down
