-- migrate:up
-- expect: warning
-- rules: unique-constraint-builds-index
-- why: UNIQUE inside ADD COLUMN builds an index under ACCESS EXCLUSIVE
ALTER TABLE orders ADD COLUMN external_ref text UNIQUE;

-- migrate:down
