-- migrate:up
-- expect: error
-- rules: cannot-run-in-transaction
-- runtime: yes
-- why: REINDEX SCHEMA cannot run in a transaction block
REINDEX SCHEMA public;

-- migrate:down
