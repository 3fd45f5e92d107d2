-- migrate:up
-- expect: warning
-- rules: column-type-rewrites-table
-- why: a shorter limit must check (and so scan) every row
ALTER TABLE accounts ALTER COLUMN nick TYPE varchar(10);

-- migrate:down
