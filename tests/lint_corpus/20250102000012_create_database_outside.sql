-- migrate:up transaction:false
-- expect: ok
-- rules: none
-- runtime: yes
-- why: the fixed version, in a transaction:false section
CREATE DATABASE lint_corpus_probe;

-- migrate:down
