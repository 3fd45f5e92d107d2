-- migrate:up
-- expect: warning
-- rules: column-type-rewrites-table
-- why: changing the scale changes every stored value: a rewrite
ALTER TABLE accounts ALTER COLUMN balance TYPE numeric(12,4);

-- migrate:down
