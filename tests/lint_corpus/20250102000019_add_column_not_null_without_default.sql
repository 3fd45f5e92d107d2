-- migrate:up
-- expect: error
-- rules: add-column-not-null-without-default
-- runtime: yes
-- why: existing rows would hold NULL in a NOT NULL column: fails on any table with rows
ALTER TABLE accounts ADD COLUMN tier integer NOT NULL;

-- migrate:down
