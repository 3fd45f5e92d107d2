-- The cluster's system identifier and current timeline: one row (system_identifier, timeline).
SELECT s.system_identifier::text AS system_identifier, c.timeline_id AS timeline
FROM pg_control_system() AS s, pg_control_checkpoint() AS c
