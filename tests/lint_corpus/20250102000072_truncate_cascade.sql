-- migrate:up
-- expect: error
-- rules: truncate-cascade
-- why: CASCADE also empties tables the file never names (orders, through its FK to accounts)
TRUNCATE accounts CASCADE;

-- migrate:down
