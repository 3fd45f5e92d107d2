-- Checkpoints and buffer writes before PostgreSQL 17 (all in pg_stat_bgwriter): timed and requested checkpoints, their write and sync time (ms), buffers written by the checkpointer, the background writer and backends, buffers allocated.
SELECT checkpoints_timed AS timed,
       checkpoints_req AS requested,
       checkpoint_write_time::float8 AS write_ms,
       checkpoint_sync_time::float8 AS sync_ms,
       buffers_checkpoint AS checkpointer_buffers,
       buffers_clean AS bgwriter_buffers,
       maxwritten_clean AS bgwriter_stopped,
       buffers_backend AS backend_buffers,
       buffers_alloc AS allocated_buffers
FROM pg_stat_bgwriter
