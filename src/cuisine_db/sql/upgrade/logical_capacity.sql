-- What the publishing server can still give a subscription: max_replication_slots and the slots in use, max_wal_senders and the senders running.
SELECT current_setting('max_replication_slots')::int AS max_slots,
       (SELECT count(*) FROM pg_replication_slots)::int AS used_slots,
       current_setting('max_wal_senders')::int AS max_senders,
       (SELECT count(*) FROM pg_stat_replication)::int AS used_senders
