-- migrate:up
-- expect: ok
-- rules: none
-- why: the table is created a line before: it is empty and nobody else sees it yet
CREATE TABLE coupons (id bigint PRIMARY KEY, code text NOT NULL);
CREATE INDEX coupons_code_idx ON coupons (code);

-- migrate:down
