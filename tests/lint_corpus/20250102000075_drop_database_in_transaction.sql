-- migrate:up
-- expect: error
-- rules: cannot-run-in-transaction drops-data
-- runtime: yes
-- why: DROP DATABASE refuses to run in a transaction block (and would lose data if it ran)
DROP DATABASE IF EXISTS old_reports;

-- migrate:down
