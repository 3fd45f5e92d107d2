-- migrate:up
-- expect: warning
-- rules: index-without-concurrently
-- why: a unique index built without CONCURRENTLY blocks writes too
CREATE UNIQUE INDEX accounts_email_idx ON accounts (email);

-- migrate:down
