-- migrate:up
-- expect: warning
-- rules: column-type-rewrites-table
-- why: int4 to int8 changes the storage width: a rewrite of the table and its indexes
ALTER TABLE orders ALTER COLUMN total TYPE bigint;

-- migrate:down
