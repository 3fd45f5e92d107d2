-- The cluster's system identifier: which backups are backups of this cluster (an upgrade or a rollback changes it).
SELECT system_identifier::text FROM pg_control_system()
