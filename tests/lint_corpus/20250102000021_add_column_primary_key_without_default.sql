-- migrate:up
-- expect: error
-- rules: add-column-not-null-without-default unique-constraint-builds-index
-- runtime: yes
-- why: a PRIMARY KEY column is NOT NULL: existing rows make it fail; it would also build its index under ACCESS EXCLUSIVE
ALTER TABLE orders ADD COLUMN seq integer PRIMARY KEY;

-- migrate:down
