"""Defaults of an environment's `[wal]` settings, shared by config.py (pydantic) and backup/wal/access.py (the
archive command's light reading of the same file). Nothing here imports anything."""

ARCHIVE_TIMEOUT = "15min"
PUSH_BATCH = 8        # .ready files one call pushes
PUSH_THREADS = 4
PREFETCH = 32         # segments the fetch-ahead spool holds (backup/wal/spool.py): 512 MB of 16 MB segments
SPOOL_MB = 1024       # and at most this many MiB on disk, copies being written included
FETCH_THREADS = 0     # the prefetcher's threads: 0 is one per core
