-- migrate:up transaction:false
-- expect: ok
-- rules: none
-- runtime: yes
-- why: the fixed version (a reset, so the server's settings do not change)
ALTER SYSTEM RESET work_mem;

-- migrate:down
