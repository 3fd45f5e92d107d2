-- migrate:up transaction:false
-- expect: warning
-- rules: rewrites-under-exclusive-lock
-- why: VACUUM FULL rewrites the table under ACCESS EXCLUSIVE (outside a transaction it does run)
VACUUM FULL orders;

-- migrate:down
