-- migrate:up
-- expect: error
-- rules: cannot-run-in-transaction
-- runtime: yes
-- why: ALTER SYSTEM cannot run in a transaction block
ALTER SYSTEM RESET work_mem;

-- migrate:down
