-- migrate:up
-- expect: warning
-- rules: constraint-validated-under-lock
-- why: the FK is checked against every row under SHARE ROW EXCLUSIVE on both tables
ALTER TABLE orders ADD CONSTRAINT orders_account_fk2 FOREIGN KEY (account_id) REFERENCES accounts (id);

-- migrate:down
