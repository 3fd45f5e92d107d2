-- migrate:up
-- expect: ok
-- rules: none
-- why: the table is new in this file: no code uses it yet
CREATE TABLE draft (id bigint);
ALTER TABLE draft RENAME TO drafts;

-- migrate:down
