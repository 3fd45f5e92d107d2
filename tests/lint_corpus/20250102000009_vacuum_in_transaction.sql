-- migrate:up
-- expect: error
-- rules: cannot-run-in-transaction
-- runtime: yes
-- why: VACUUM cannot run in a transaction block (squawk misses it)
VACUUM orders;

-- migrate:down
