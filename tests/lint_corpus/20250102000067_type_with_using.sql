-- migrate:up
-- expect: warning
-- rules: column-type-rewrites-table
-- why: USING computes a new value for every row: a rewrite even to text
ALTER TABLE accounts ALTER COLUMN email TYPE text USING lower(email);

-- migrate:down
