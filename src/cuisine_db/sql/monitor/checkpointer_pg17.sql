-- Checkpoints and buffer writes on PostgreSQL 17+ (pg_stat_checkpointer took the checkpoint counters; backends' writes are counted in pg_stat_io, whose relation rows are summed: from 18 it also has WAL rows, left out): timed and requested checkpoints, write and sync time (ms), buffers written by the checkpointer, the background writer and backends, buffers allocated.
SELECT c.num_timed AS timed,
       c.num_requested AS requested,
       c.write_time::float8 AS write_ms,
       c.sync_time::float8 AS sync_ms,
       c.buffers_written AS checkpointer_buffers,
       b.buffers_clean AS bgwriter_buffers,
       b.maxwritten_clean AS bgwriter_stopped,
       (SELECT coalesce(sum(io.writes), 0)::bigint FROM pg_stat_io AS io
        WHERE io.object IN ('relation', 'temp relation')
          AND io.backend_type NOT IN ('checkpointer', 'background writer')) AS backend_buffers,
       b.buffers_alloc AS allocated_buffers
FROM pg_stat_checkpointer AS c, pg_stat_bgwriter AS b
