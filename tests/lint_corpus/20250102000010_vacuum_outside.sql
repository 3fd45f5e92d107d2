-- migrate:up transaction:false
-- expect: ok
-- rules: none
-- runtime: yes
-- why: plain VACUUM outside a transaction takes SHARE UPDATE EXCLUSIVE only: reads and writes go on
VACUUM (ANALYZE) orders;

-- migrate:down
