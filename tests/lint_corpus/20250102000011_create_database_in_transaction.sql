-- migrate:up
-- expect: error
-- rules: cannot-run-in-transaction
-- runtime: yes
-- why: CREATE DATABASE cannot run in a transaction block
CREATE DATABASE lint_corpus_probe;

-- migrate:down
