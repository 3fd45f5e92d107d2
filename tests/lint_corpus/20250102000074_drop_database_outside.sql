-- migrate:up transaction:false
-- expect: warning
-- rules: drops-data
-- why: outside a transaction DROP DATABASE runs, and takes a whole database with it
DROP DATABASE IF EXISTS old_reports;

-- migrate:down
