-- migrate:up
-- expect: warning
-- rules: rename-breaks-running-code
-- why: running code still asks for the old name
ALTER TABLE orders RENAME COLUMN note TO remark;

-- migrate:down
