-- migrate:up transaction:false
-- expect: warning
-- rules: transaction-control
-- runtime: yes
-- why: a BEGIN that nothing commits stays open to the end of the run: its lock on orders is held until the runner's session commits it, and a later CONCURRENTLY migration would fail inside it; it applies, so a warning
BEGIN;
ALTER TABLE orders ADD COLUMN flagged boolean;

-- migrate:down
