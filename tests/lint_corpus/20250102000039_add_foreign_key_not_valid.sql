-- migrate:up
-- expect: ok
-- rules: none
-- why: NOT VALID skips the scan; new rows are checked from now on
ALTER TABLE orders ADD CONSTRAINT orders_account_fk2 FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID;

-- migrate:down
