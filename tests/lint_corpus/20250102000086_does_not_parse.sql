-- migrate:up
-- expect: error
-- rules: does-not-parse
-- why: the server would reject it too
ALTER TABLE orders ADD COLUM broken text;

-- migrate:down
