-- migrate:up
-- expect: warning
-- rules: add-column-rewrites-table
-- why: gen_random_uuid() is volatile: every row gets its own value, so the table is rewritten
ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();

-- migrate:down
