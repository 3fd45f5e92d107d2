-- migrate:up
-- expect: warning
-- rules: set-not-null-scans-table
-- why: SET NOT NULL scans every row under ACCESS EXCLUSIVE
ALTER TABLE orders ALTER COLUMN note SET NOT NULL;

-- migrate:down
