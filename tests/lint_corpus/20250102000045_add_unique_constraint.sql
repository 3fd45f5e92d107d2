-- migrate:up
-- expect: warning
-- rules: unique-constraint-builds-index
-- why: ADD UNIQUE builds its index under ACCESS EXCLUSIVE
ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE (email);

-- migrate:down
