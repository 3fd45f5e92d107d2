-- migrate:up
-- expect: warning
-- rules: index-without-concurrently
-- why: app.orders is new but the bare orders resolves through search_path to public.orders, which has rows
CREATE SCHEMA app;
CREATE TABLE app.orders (id bigint);
CREATE TABLE orders_archive (id bigint);
CREATE INDEX orders_total_idx ON public.orders (total);

-- migrate:down
