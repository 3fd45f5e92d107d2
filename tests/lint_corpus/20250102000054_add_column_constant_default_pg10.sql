-- migrate:up
-- expect: warning
-- rules: add-column-rewrites-table
-- major: 10
-- why: before 11 even a constant default rewrites the table
ALTER TABLE orders ADD COLUMN status text DEFAULT 'new';

-- migrate:down
