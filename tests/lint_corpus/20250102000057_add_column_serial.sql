-- migrate:up
-- expect: warning
-- rules: add-column-rewrites-table
-- why: serial means DEFAULT nextval(), volatile: a rewrite
ALTER TABLE orders ADD COLUMN position bigserial;

-- migrate:down
