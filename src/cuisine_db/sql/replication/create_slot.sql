-- Creates a physical replication slot that keeps WAL from now on: one row (slot name, restart position).
SELECT slot_name::text AS name, lsn::text AS lsn FROM pg_create_physical_replication_slot(%(slot)s, true)
