-- migrate:up transaction:false
-- expect: ok
-- rules: none
-- major: 11
-- why: the fixed version for 11: a transaction:false section
ALTER TYPE mood ADD VALUE 'calm';

-- migrate:down
