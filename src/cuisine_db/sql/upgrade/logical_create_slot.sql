-- Creates a logical replication slot for pgoutput (slot_name, lsn): the changes after it are kept for a subscription created later.
SELECT slot_name::text, lsn::text FROM pg_create_logical_replication_slot(%(slot)s, 'pgoutput')
