-- Replication slots: pg_upgrade carries none of the physical ones, and logical ones only from 17 to a newer major.
SELECT slot_name::text, slot_type, coalesce(database::text, '') AS database, active FROM pg_replication_slots ORDER BY 1
