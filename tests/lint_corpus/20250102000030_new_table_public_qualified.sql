-- migrate:up
-- expect: ok
-- rules: none
-- why: created as t4, altered as public.t4: search_path's public resolves both to one new table
CREATE TABLE t4 (id bigint);
ALTER TABLE public.t4 ADD CONSTRAINT t4_id_positive CHECK (id > 0);

-- migrate:down
