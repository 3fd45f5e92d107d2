-- migrate:up
-- expect: warning
-- rules: column-type-rewrites-table
-- why: char(n) to text strips padding, a real conversion: a rewrite
ALTER TABLE accounts ALTER COLUMN code TYPE text;

-- migrate:down
