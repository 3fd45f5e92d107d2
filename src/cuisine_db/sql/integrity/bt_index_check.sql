-- amcheck's B-tree check of one index, heapallindexed: raises an error on corruption, returns one empty row otherwise.
SELECT {schema}.bt_index_check(%(oid)s::oid::regclass, true)
