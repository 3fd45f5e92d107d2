-- migrate:up
-- expect: ok
-- rules: none
-- why: a longer varchar limit only loosens a check: no rewrite
ALTER TABLE accounts ALTER COLUMN nick TYPE varchar(60);

-- migrate:down
