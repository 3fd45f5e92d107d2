-- migrate:up
-- expect: error
-- rules: truncate-cascade waiver-without-reason
-- why: a waiver without a reason is refused, and the finding it meant to waive stays an error
-- lint:ignore truncate-cascade
TRUNCATE accounts CASCADE;

-- migrate:down
