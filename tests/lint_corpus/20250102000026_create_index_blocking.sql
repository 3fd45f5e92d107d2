-- migrate:up
-- expect: warning
-- rules: index-without-concurrently
-- why: a plain CREATE INDEX holds SHARE on orders (writes wait) for as long as the build takes
CREATE INDEX orders_total_idx ON orders (total);

-- migrate:down
