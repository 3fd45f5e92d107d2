-- WAL summaries on the new cluster (PostgreSQL 17+), as wal enable sets them: its incremental backups.
ALTER SYSTEM SET summarize_wal = on
