-- migrate:up
-- expect: ok
-- rules: none
-- why: a constant cast default is evaluated once (11+)
ALTER TABLE accounts ADD COLUMN settings jsonb NOT NULL DEFAULT '{}'::jsonb;

-- migrate:down
