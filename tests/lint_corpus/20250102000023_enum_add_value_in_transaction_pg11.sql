-- migrate:up
-- expect: error
-- rules: cannot-run-in-transaction
-- major: 11
-- why: before 12, ALTER TYPE ... ADD VALUE cannot run in a transaction block
ALTER TYPE mood ADD VALUE 'calm';

-- migrate:down
