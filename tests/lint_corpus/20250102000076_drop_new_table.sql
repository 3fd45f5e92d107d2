-- migrate:up
-- expect: ok
-- rules: none
-- why: dropping a table made in the same file loses nothing
CREATE TABLE tmp_import (id bigint);
DROP TABLE tmp_import;

-- migrate:down
