-- migrate:up
-- expect: warning
-- rules: constraint-validated-under-lock
-- why: REFERENCES inside ADD COLUMN is a validated FK: both tables locked for the check
ALTER TABLE orders ADD COLUMN referrer_id bigint REFERENCES accounts (id);

-- migrate:down
