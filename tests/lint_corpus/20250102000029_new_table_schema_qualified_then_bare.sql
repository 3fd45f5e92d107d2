-- migrate:up
-- expect: ok
-- rules: none
-- why: created as app.t3 and altered as t3: the same new table (squawk and the old lint took it for an existing one)
CREATE SCHEMA app;
CREATE TABLE app.t3 (id bigint);
ALTER TABLE t3 ADD COLUMN label text NOT NULL;
CREATE INDEX t3_label_idx ON t3 (label);

-- migrate:down
