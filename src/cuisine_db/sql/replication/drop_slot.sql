-- Drops a replication slot (it must not be in use): one row, no value.
SELECT pg_drop_replication_slot(%(slot)s)
