-- migrate:up transaction:false
-- expect: ok
-- rules: none
-- runtime: yes
-- why: the fixed version: the file's own transaction is committed
BEGIN;
ALTER TABLE orders ADD COLUMN flagged boolean;
COMMIT;

-- migrate:down
