-- migrate:up
-- expect: ok
-- rules: none
-- why: SET search_path puts the new table in app2; the qualified ALTER names the same new table
CREATE SCHEMA app2;
SET search_path = app2, public;
CREATE TABLE t5 (id bigint);
ALTER TABLE app2.t5 ALTER COLUMN id SET NOT NULL;
RESET search_path;

-- migrate:down
