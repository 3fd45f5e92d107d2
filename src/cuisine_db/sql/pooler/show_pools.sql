-- PgBouncer's admin console: one row per (database, user) pool with its client and server connections and the longest wait.
SHOW POOLS
