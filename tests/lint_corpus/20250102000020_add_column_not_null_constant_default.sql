-- migrate:up
-- expect: ok
-- rules: none
-- runtime: yes
-- why: the fixed version: a constant default is stored in the catalog (11+), no rewrite, no failure
ALTER TABLE accounts ADD COLUMN tier integer NOT NULL DEFAULT 0;

-- migrate:down
