-- One replication slot by name: (active, active_pid), or no row when it does not exist.
SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = %(slot)s
