-- migrate:up
-- expect: ok
-- rules: none
-- why: a new table's FK to accounts takes only SHARE ROW EXCLUSIVE briefly (nothing to validate)
CREATE TABLE invoices (id bigint PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts (id));

-- migrate:down
