-- migrate:up
-- expect: ok
-- rules: none
-- why: an index on a table made in this same file: nothing else can use it
CREATE TABLE scratch (id bigint);
CREATE INDEX scratch_id_idx ON scratch (id);
DROP INDEX scratch_id_idx;

-- migrate:down
