-- migrate:up
-- expect: ok
-- rules: none
-- why: varchar(100) to text is binary compatible: no rewrite (the old lint flagged it)
ALTER TABLE accounts ALTER COLUMN email TYPE text;

-- migrate:down
