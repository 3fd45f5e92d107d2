-- migrate:up
-- expect: warning
-- rules: transaction-control
-- runtime: yes
-- why: BEGIN/COMMIT inside the runner's transaction: BEGIN is ignored with a warning and COMMIT ends the runner's transaction early, so atomicity is lost, though nothing fails
BEGIN;
ALTER TABLE orders ADD COLUMN flagged boolean;
COMMIT;

-- migrate:down
