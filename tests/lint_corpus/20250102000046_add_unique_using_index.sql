-- migrate:up
-- expect: ok
-- rules: none
-- why: the index was built CONCURRENTLY earlier; USING INDEX only attaches it
ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE USING INDEX accounts_email_idx;

-- migrate:down
